"""``make stress``: the long stress run, as a gate.

Runs ``failfirst stress`` exactly as a user would (a fresh file, ``--json``), then
judges the file independently with plain ``sqlite3``: every job terminal, each
succeeded job with exactly one row in ``effects``, no (job, part) twice. Fails
(exit 1) unless ``lost`` and ``duplicate_effects`` are 0, every invariant checker
is clean and at least ``--min-kills`` SIGKILLs happened. Writes the result, with
sqlite3's own counts, to ``--out`` (the Performance chapter publishes it).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from failfirst.bench import BUILD

#: Where `make stress` writes its result, and where the Performance chapter reads it.
RESULT = BUILD / "stress" / "result.json"


def load_result(path: Path = RESULT) -> dict[str, Any] | None:
    """The result `make stress` wrote (its JSON plus sqlite3's counts), or None."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="_build/stress/stress.db")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-rate", default="0")
    parser.add_argument("--kills", default="0", help="planned SIGKILLs (failfirst stress --kills)")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--min-kills", type=int, default=10)
    parser.add_argument("--out", default=str(RESULT), help="where the result is written (JSON)")
    args = parser.parse_args()
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    command = [sys.executable, "-m", "failfirst.cli", "stress", "--db", str(db),
               "--jobs", str(args.jobs), "--workers", str(args.workers),
               "--kill-rate", args.kill_rate, "--kills", args.kills, "--seed", args.seed, "--json"]
    print("$", " ".join(["failfirst", *command[3:]]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        return 1
    result = json.loads(done.stdout)
    print(json.dumps(result, indent=2, sort_keys=True))

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    open_jobs = conn.execute(
        "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded', 'dead')").fetchone()[0]
    bad_succeeded = conn.execute(
        "SELECT count(*) FROM jobs j WHERE j.state = 'succeeded' "
        "AND (SELECT count(*) FROM effects e WHERE e.job_id = j.id) != 1").fetchone()[0]
    doubled = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM effects GROUP BY job_id, part HAVING count(*) > 1)"
    ).fetchone()[0]
    jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    conn.close()

    failures = []
    if result["lost"] != 0:
        failures.append(f"lost {result['lost']}")
    if result["duplicate_effects"] != 0:
        failures.append(f"duplicate_effects {result['duplicate_effects']}")
    if result["violations"]:
        failures.append(f"violations {result['violations']}")
    if result["kills"] < args.min_kills:
        failures.append(f"only {result['kills']} kills (wanted at least {args.min_kills})")
    if jobs != args.jobs or result["enqueued"] != args.jobs:
        failures.append(f"{jobs} jobs in the file, {result['enqueued']} enqueued, {args.jobs} asked")
    if open_jobs or bad_succeeded or doubled:
        failures.append(f"sqlite3 disagrees: {open_jobs} jobs not terminal, {bad_succeeded} "
                        f"succeeded jobs without exactly one effect row, {doubled} doubled parts")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "kill_rate": float(args.kill_rate), "seed": args.seed,
                               "workers": args.workers, "passed": not failures,
                               "sqlite3": {"jobs": jobs, "not_terminal": open_jobs,
                                           "succeeded_without_one_effect": bad_succeeded,
                                           "doubled_parts": doubled}},
                              indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if failures:
        print("stress gate FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(f"stress gate passed: {result['enqueued']} jobs, {result['kills']} SIGKILLs, "
          f"lost 0, duplicate effects 0, every invariant holds; sqlite3 agrees on {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
