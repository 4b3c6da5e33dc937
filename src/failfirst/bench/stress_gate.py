"""``make stress`` and ``make stress-pg``: the long real runs, as gates.

``--db PATH`` (``make stress``) runs ``failfirst stress`` exactly as a user would (a
fresh SQLite file, ``--json``), then judges the file independently with plain
``sqlite3``: every job terminal, each succeeded job with exactly one row in
``effects``, no (job, part) twice. Writes the result, with sqlite3's own counts, to
``--out`` (the Performance chapter publishes it).

``--pg-folder FOLDER`` (``make stress-pg``) starts a private PostgreSQL server in
FOLDER (``initdb``, its own port, local connections only), runs the real-run driver
(:func:`failfirst.realrun.driver.run`) on it with ``--fault`` struck ``--faults``
times at seeded points of progress (``mixed``: SIGKILLs, terminated connections and
crashes of that server), and judges the database with plain SQL
(:func:`failfirst.store.pgtools.judge_sql`). SIGTERM or Ctrl-C stop the run, stop the
server and remove FOLDER, with one line.

Either gate fails (exit 1) unless nothing was lost, no effect was applied twice,
every invariant checker is clean, the independent count agrees, and at least
``--min-faults`` faults struck. Bad input (a path that is not what it should be) is
one line and exit 2, before anything runs; nothing the gate did not make is ever
removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from failfirst.bench import BUILD
from failfirst.realrun import driver
from failfirst.realrun.faults import FAULTS
from failfirst.store import StoreError, paths, pgtools
from failfirst.store.sqlite import APPLICATION_ID

#: Where `make stress` writes its result, and where the Performance chapter reads it.
RESULT = BUILD / "stress" / "result.json"
#: Where `make stress-pg` writes its result.
RESULT_PG = BUILD / "stress" / "result_pg.json"
EXIT_USAGE, EXIT_FAILED = 2, 1


def load_result(path: Path = RESULT) -> dict[str, Any] | None:
    """The result `make stress` wrote (its JSON plus sqlite3's counts), or None."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


class _Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so every ``finally`` stops what it started."""


def _on_signal(signum: int, frame: object) -> None:
    # Once: a second signal must not cut the clean-up (stop the server, remove its folder).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else _Terminated


def _in_build(path: str) -> str:
    """A path under ``_build/`` gets its missing folders made (a fresh clone has none);
    any other must be in a folder that exists."""
    full = Path(path).resolve()
    if BUILD in full.parents:
        full.parent.mkdir(parents=True, exist_ok=True)
    return str(full)


def _fresh_database(db: str) -> Path:
    """``--db``: a new path, or a failfirst database (removed, with its -wal and -shm, so
    the run starts fresh). Anything else is refused: the gate removes nothing of yours."""
    full = Path(paths.output_file(_in_build(db), "--db"))
    if full.exists():
        with open(full, "rb") as f:
            header = f.read(100)
        is_ours = len(header) == 100 and int.from_bytes(header[68:72], "big") == APPLICATION_ID
        if header and not is_ours:
            raise paths.PathRefused(f"--db {paths.shown(str(full))}: not a failfirst database; the gate "
                                    "removes only its own files (name a new path)")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{full}{suffix}").unlink(missing_ok=True)
    return full


def _sqlite_counts(db: Path) -> dict[str, int]:
    """Plain sqlite3, knowing nothing of failfirst."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "jobs": conn.execute("SELECT count(*) FROM jobs").fetchone()[0],
            "not_terminal": conn.execute(
                "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded', 'dead')").fetchone()[0],
            "succeeded_without_one_effect": conn.execute(
                "SELECT count(*) FROM jobs j WHERE j.state = 'succeeded' "
                "AND (SELECT count(*) FROM effects e WHERE e.job_id = j.id) != 1").fetchone()[0],
            "doubled_parts": conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM effects GROUP BY job_id, part HAVING count(*) > 1)"
            ).fetchone()[0],
        }
    finally:
        conn.close()


def _failures(result: dict[str, Any], jobs: int, min_faults: int, independent: list[str]) -> list[str]:
    failures = []
    if result["lost"] != 0:
        failures.append(f"lost {result['lost']}")
    if result["duplicate_effects"] != 0:
        failures.append(f"duplicate_effects {result['duplicate_effects']}")
    if result["violations"]:
        failures.append(f"violations {result['violations']}")
    struck = result.get("faults", result["kills"])
    if struck < min_faults:
        failures.append(f"only {struck} faults struck (wanted at least {min_faults})")
    if result["enqueued"] != jobs:
        failures.append(f"{result['enqueued']} jobs enqueued, {jobs} asked")
    return failures + independent


def _write(out: str, payload: dict[str, Any]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sqlite_gate(args: argparse.Namespace) -> int:
    db = _fresh_database(args.db)
    command = [sys.executable, "-m", "failfirst.cli", "stress", "--db", str(db),
               "--jobs", str(args.jobs), "--workers", str(args.workers),
               "--kill-rate", args.kill_rate, "--kills", str(args.faults), "--seed", args.seed, "--json"]
    print("$", " ".join(["failfirst", *command[3:]]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        return EXIT_FAILED
    result = json.loads(done.stdout)
    print(json.dumps(result, indent=2, sort_keys=True))
    counts = _sqlite_counts(db)
    disagrees = ([f"sqlite3 disagrees: {counts}"]
                 if counts["not_terminal"] or counts["succeeded_without_one_effect"]
                 or counts["doubled_parts"] or counts["jobs"] != args.jobs else [])
    failures = _failures(result, args.jobs, args.min_faults, disagrees)
    _write(args.out, {**result, "seed": args.seed, "workers": args.workers,
                      "passed": not failures, "sqlite3": counts})
    if failures:
        print("stress gate FAILED: " + "; ".join(failures), file=sys.stderr)
        return EXIT_FAILED
    print(f"stress gate passed: {result['enqueued']} jobs, {result['kills']} SIGKILLs, "
          f"lost 0, duplicate effects 0, every invariant holds; sqlite3 agrees on {db}")
    return 0


def pg_gate(args: argparse.Namespace) -> int:
    """A private server in ``--pg-folder``, the driver on it, plain SQL's verdict."""
    folder = paths.own_folder(args.pg_folder, "--pg-folder")
    problem = pgtools.binaries_problem()
    if problem is not None:
        raise paths.PathRefused(problem)  # one line, exit 2: nothing to run on
    if os.path.isdir(folder):  # ours or empty (own_folder checked): start fresh
        shutil.rmtree(folder)
    server = pgtools.PrivateServer(folder)
    try:
        server.init()
        server.start()
        print(f"stress-pg: a private server in {folder} at {server.url}", flush=True)
        with pgtools.throwaway_database(server.url, tag="ff_stress") as url:
            result = driver.run(f"{url}?schema=stress", args.jobs, args.workers, fault=args.fault,
                                faults=args.faults, guard=args.guard == "on", seed=int(args.seed),
                                batch=args.batch, lease_s=1.0, heartbeat_s=0.25,
                                timeout_s=args.timeout_s, server=server)
            verdict = pgtools.judge_sql(url, "stress")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server goes, whatever comes now
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.cleanup()
        signal.signal(signal.SIGINT, _on_signal)
    sql = {**verdict.__dict__, "ok": verdict.ok}
    print(json.dumps({**result, "sql": sql}, sort_keys=True))
    if args.guard == "on":
        disagrees = [] if verdict.ok and verdict.jobs == args.jobs else [f"plain SQL disagrees: {sql}"]
        failures = _failures(result, args.jobs, args.min_faults, disagrees)
    else:  # a negative control: its damage is its output; only its faults are a condition
        failures = _failures({**result, "lost": 0, "duplicate_effects": 0, "violations": {}},
                             args.jobs, args.min_faults, [])
    if result["hits"] == 0:
        failures.append("no fault hit a worker: the run proves nothing")
    _write(args.out, {**result, "passed": not failures, "sql": sql})
    if failures:
        print("stress-pg gate FAILED: " + "; ".join(failures), file=sys.stderr)
        return EXIT_FAILED
    print(f"stress-pg gate passed: {result['enqueued']} jobs, {result['faults']} faults "
          f"({result['faults_by_kind']}), lost 0, not exactly once 0, every invariant holds; "
          f"plain SQL agrees (the server and {folder} are gone)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="make stress: the SQLite file (new, or a failfirst database)")
    where.add_argument("--pg-folder", help="make stress-pg: the private server's folder (new, empty, "
                                           "or one this gate made)")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-rate", default="0", help="--db: SIGKILLs per second at most")
    parser.add_argument("--faults", "--kills", type=int, default=0, dest="faults",
                        help="faults planned at seeded points of progress")
    parser.add_argument("--fault", choices=sorted(FAULTS), default="mixed", help="--pg-folder: which fault")
    parser.add_argument("--batch", type=int, default=64, help="--pg-folder: jobs per claim")
    parser.add_argument("--guard", choices=("on", "off"), default="on", help="--pg-folder")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="--pg-folder")
    parser.add_argument("--min-faults", "--min-kills", type=int, default=10, dest="min_faults")
    parser.add_argument("--out", default=None, help="where the result is written (JSON)")
    args = parser.parse_args(argv)
    name = "stress-pg" if args.pg_folder else "stress"
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        args.out = paths.output_file(_in_build(args.out or str(RESULT_PG if args.pg_folder else RESULT)),
                                     "--out")
        return pg_gate(args) if args.pg_folder else sqlite_gate(args)
    except (StoreError, driver.RunInputError) as exc:
        print(f"{name}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:  # the run broke (RunBroken), a server did not start
        print(f"{name}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{name}: interrupted; every process it started was stopped"
              + (f", and {args.pg_folder} removed" if args.pg_folder else ""), file=sys.stderr)
        return 128 + signal.SIGINT
    except _Terminated:
        print(f"{name}: terminated; every process it started was stopped"
              + (f", and {args.pg_folder} removed" if args.pg_folder else ""), file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
