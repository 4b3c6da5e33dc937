"""Throughput on PostgreSQL: failfirst beside procrastinate and pgqueuer, in one run.

For each worker count (1, 2 and 4 worker processes), the three systems get the same
job count, the same handler effect (one row inserted in an ``effects`` table), the
same durability (``synchronous_commit`` on, the server's default: checked, never
set) and the same server, the machine's shared one (``$FAILFIRST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``); each run gets a throwaway database
of its own, dropped afterwards. All jobs are enqueued first; the clock runs from
starting the worker processes until the parent sees the last effect (failfirst:
every job terminal, which is the same instant, since a job's effect commits with its
completion), polling every ``failfirst.bench.throughput.POLL_S`` for all three. Runs rotate
which system goes first, so that a noisy machine slows all alike; each figure is
the median of ``--runs``.

What each system runs, and how it commits its effect:

- **failfirst**: :func:`failfirst.realrun.driver.stress` with ``kill_rate=0`` (N
  ``python -m failfirst.realrun.process worker`` processes, the parent driving the reaper).
  A worker claims ``--batch`` jobs in one transaction (``FOR UPDATE SKIP LOCKED``)
  and commits their effects and fenced completions in one transaction: the effect is
  in the job's own completion transaction, exactly once by constraint. Handlers run
  one at a time.
- **procrastinate**: its worker command (``procrastinate --app ... worker``) at its
  default concurrency, one job at a time per process. The task inserts the row through
  the worker's connector (its own pool), autocommit: one commit per effect, apart
  from procrastinate's own transactions that fetch and finish the job. The app is
  the crash experiment's (``failfirst.peers.sys_procrastinate.make_app``:
  heartbeat every 0.5 s instead of 10 s, stalled jobs not retried).
- **pgqueuer**: what ``pgq run`` runs (``pgqueuer.run``) at its defaults: batches
  of 10 jobs per dequeue, jobs of a batch run as concurrent asyncio tasks, completions
  buffered and written in batches. The task inserts the row on the connection the
  worker dequeues on, autocommit: one commit per effect.

Neither peer offers to write a handler's row in the transaction that marks its job
done, so their effect and their acknowledgement are two commits (at-least-once);
failfirst's are one (exactly once). That is a difference in guarantees, stated here,
not levelled.

What the clock includes: the worker processes' start-up (interpreter, imports,
connecting; procrastinate and pgqueuer import in about 0.35 s, failfirst's worker in
about 0.1 s on the machine this was written on), which at 5,000 jobs is still a
noticeable part of every run; and, for the peers, not their last acknowledgements (the clock
stops at the last effect row, while pgqueuer may still hold completions in its buffer
and procrastinate may be finishing its last job). The first weighs against the
peers, the second in their favour; both are fixed amounts per run, not a steady rate.

Verified after every run (a run that fails its check aborts the benchmark):
failfirst as the SQLite benchmark judges it (``lost`` 0, ``duplicate_effects`` 0,
every invariant checker clean, every job succeeded), and by an independent SQL
count (:func:`failfirst.store.pgtools.judge_sql`: every succeeded job has exactly
one effect row); the peers by counting their effect rows (exactly ``--jobs``, all
distinct, every one written by a session at ``synchronous_commit`` on: the column
default records it).

``--profile`` runs one failfirst worker in this process under cProfile on
``--jobs`` jobs, counts its statements by kind and the time spent waiting on
each, and writes ``_build/bench/profile_pg.txt``.

Run with ``make bench-pg``; writes ``_build/bench/throughput_pg.json``. Figures are
wall-clock measurements of this machine (2 cores, the server on the same machine): a
benchmark, never a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg

from failfirst.bench import BUILD, pg_apps
from failfirst.bench.throughput import POLL_S, TIMEOUT_S, failfirst_run
from failfirst.realrun.driver import DEFAULT_BATCH
from failfirst.store import open_store, parse_store_url, pgtools

#: Where `make bench-pg` writes its results (the PostgreSQL chapter reads them).
RESULTS = BUILD / "bench" / "throughput_pg.json"
PROFILE = BUILD / "bench" / "profile_pg.txt"
#: The benchmark's size: what `make bench-pg` runs.
JOBS, RUNS, WORKER_COUNTS = 5_000, 3, (1, 2, 4)
SYSTEMS = ("failfirst", "procrastinate", "pgqueuer")
PEERS = {
    "procrastinate": (pg_apps.procrastinate_setup, pg_apps.procrastinate_command),
    "pgqueuer": (pg_apps.pgqueuer_setup, pg_apps.pgqueuer_command),
}


def synchronous_commit(url: str) -> str:
    """``SHOW synchronous_commit`` on a connection that failfirst's workers open."""
    store = open_store(url, create=True)
    try:
        return store._conn.execute("SHOW synchronous_commit").fetchone()[0]  # read-only look
    finally:
        store.close()


def failfirst_pg_run(url: str, jobs: int, workers: int, batch: int) -> float:
    """The SQLite benchmark's failfirst run (judged by failfirst's own checkers), then
    judged again by plain SQL."""
    setting = synchronous_commit(url)
    if setting != "on":
        raise SystemExit(f"failfirst's connections run at synchronous_commit {setting}, not on")
    jobs_per_s = failfirst_run(url, jobs, workers, batch)
    verdict = pgtools.judge_sql(url)
    if not (verdict.ok and verdict.succeeded == jobs and verdict.extra_effect_rows == 0):
        raise SystemExit(f"failfirst run failed the SQL check: {verdict}")
    return jobs_per_s


def peer_run(system: str, dsn: str, jobs: int, workers: int) -> float:
    setup, command = PEERS[system]
    setup(dsn, jobs)
    env = {**os.environ, pg_apps.DSN_ENV: dsn}
    conn = psycopg.connect(dsn, autocommit=True)
    procs: list[subprocess.Popen[bytes]] = []
    # The workers' logs go to an anonymous file: a pipe nobody reads would fill and stall them.
    log = tempfile.TemporaryFile(prefix="failfirst-bench-pg-")
    started = time.monotonic()  # real-time: benchmark clock
    try:
        for _ in range(workers):
            procs.append(subprocess.Popen(command(), env=env, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        while True:
            if conn.execute("SELECT count(*) FROM effects").fetchone()[0] >= jobs:
                elapsed_s = time.monotonic() - started  # real-time: benchmark clock
                break
            if any(proc.poll() is not None for proc in procs):
                log.seek(0)
                raise SystemExit(f"{system} worker exited: {log.read().decode()[-2000:]}")
            if time.monotonic() - started > TIMEOUT_S:  # real-time: benchmark clock
                raise SystemExit(f"{system} run timed out after {TIMEOUT_S:g} s")
            time.sleep(POLL_S)  # real-time: benchmark clock
    finally:
        _stop(procs)
        log.close()
    rows, distinct, not_on = conn.execute(
        "SELECT count(*), count(DISTINCT n), count(*) FILTER (WHERE sync <> 'on') FROM effects").fetchone()
    conn.close()
    if rows != jobs or distinct != jobs or not_on:
        raise SystemExit(f"{system} run: {rows} effect rows, {distinct} distinct, {not_on} written "
                         f"below synchronous_commit on; expected {jobs}")
    return jobs / elapsed_s


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure(
    jobs: int, runs: int, worker_counts: list[int], batch: int, admin_url: str | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """The three systems side by side; one result object per worker count."""
    versions = {"procrastinate": version("procrastinate"), "pgqueuer": version("pgqueuer"),
                "psycopg": version("psycopg")}
    with psycopg.connect(admin_url or pgtools.admin_url()) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    results = []
    for workers in worker_counts:
        per_system: dict[str, list[float]] = {s: [] for s in SYSTEMS}
        for run in range(runs):
            # Rotate which system goes first, so drift in the machine's load is shared.
            order = SYSTEMS[run % 3:] + SYSTEMS[:run % 3]
            for system in order:
                with pgtools.throwaway_database(admin_url, tag=f"ff_bench_{system}") as url:
                    if system == "failfirst":
                        per_system[system].append(failfirst_pg_run(url, jobs, workers, batch))
                    else:
                        per_system[system].append(peer_run(system, url, jobs, workers))
            log(f"  workers {workers} run {run + 1}: " + ", ".join(
                f"{s} {per_system[s][-1]:,.0f}" for s in SYSTEMS) + " jobs/s")
        med = {s: statistics.median(per_system[s]) for s in SYSTEMS}
        row: dict[str, Any] = {"workers": workers}
        row.update({f"{s}_jobs_per_s": round(med[s], 1) for s in SYSTEMS})
        row["ratio_vs_procrastinate"] = round(med["failfirst"] / med["procrastinate"], 2)
        row["ratio_vs_pgqueuer"] = round(med["failfirst"] / med["pgqueuer"], 2)
        row.update({f"{s}_runs": [round(x, 1) for x in per_system[s]] for s in SYSTEMS})
        row.update({
            "jobs": jobs, "runs": runs, "batch": batch,
            "synchronous_commit": "on",
            "concurrency": {"failfirst": f"1 job at a time per process, batches of {batch}",
                            "procrastinate": "default (1 job at a time per process)",
                            "pgqueuer": "defaults (batch_size 10, no concurrency limit)"},
            "versions": versions, "server_version": server,
            "exactly_once_verified": True,
        })
        results.append(row)
        log(f"workers {workers}: " + ", ".join(f"{s} {med[s]:,.0f}" for s in SYSTEMS)
            + f" jobs/s (median of {runs}, {jobs} jobs each)")
    return results


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'workers':>7}  {'failfirst':>10}  {'procrastinate':>13}  {'pgqueuer':>9}  "
            f"{'ff/procrastinate':>16}  {'ff/pgqueuer':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['workers']:>7}  {r['failfirst_jobs_per_s']:>10,.0f}  "
                     f"{r['procrastinate_jobs_per_s']:>13,.0f}  {r['pgqueuer_jobs_per_s']:>9,.0f}  "
                     f"{r['ratio_vs_procrastinate']:>16.2f}  {r['ratio_vs_pgqueuer']:>11.2f}")
    return "\n".join(lines) + "\n(jobs/s, median of each system's runs)"


def load_results(path: Path = RESULTS) -> list[dict[str, Any]] | None:
    """The results `make bench-pg` wrote, or None when there are none."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# -- where failfirst's time goes -----------------------------------------------------------


class _CountingCursor:
    """A store cursor that counts statements by kind and the time spent in each (the
    round trip, the server's work and psycopg's)."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self._cur = cur
        self.stats: dict[str, list[float]] = {}  # kind -> [calls, rows, seconds]

    def _count(self, query: str, rows: int, seconds: float) -> None:
        kind = " ".join(query.split()[:3]) + (" ..." if ";" not in query else " ; ...")
        entry = self.stats.setdefault(kind, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += rows
        entry[2] += seconds

    def execute(self, query: Any, params: Any = None) -> Any:
        t = time.perf_counter()
        try:
            return self._cur.execute(query, params)
        finally:
            self._count(str(query), 1, time.perf_counter() - t)

    def executemany(self, query: Any, rows: Any) -> Any:
        t = time.perf_counter()
        try:
            return self._cur.executemany(query, rows)
        finally:
            self._count(str(query), len(rows), time.perf_counter() - t)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def profile(jobs: int, batch: int, admin_url: str | None = None, top: int = 25) -> str:
    """One failfirst worker, in this process, under cProfile: ``jobs`` jobs enqueued
    first, the worker's loop driven until every job is terminal. Returns the report."""
    from failfirst.processor.worker import worker_loop
    from failfirst.realrun.process import JOB_TYPE, RealConfig, drive, open_queue

    config = RealConfig(batch=batch)
    with pgtools.throwaway_database(admin_url, tag="ff_bench_profile") as url:
        client = open_queue(url, True, config, create=True)
        client.enqueue_batch(JOB_TYPE, [{"n": i} for i in range(jobs)], actor="client")
        queue = open_queue(url, True, config)
        counter = _CountingCursor(queue.store._cur)
        queue.store._cur = counter  # the worker's statements, counted (nothing else changes)
        loop = worker_loop("w1", queue, config.worker_config(), seed="w1")

        def work_left() -> bool:
            counts = client.store.counts_by_state()
            return counts.get("pending", 0) + counts.get("leased", 0) > 0

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        drive(loop, idle_poll_s=config.idle_poll_s, deadline_s=time.time() + TIMEOUT_S,  # real-time:
              alive=work_left)
        profiler.disable()
        elapsed_s = time.perf_counter() - started
        queue.store.close()
        verdict = pgtools.judge_sql(url)
        client.store.close()
    if not (verdict.ok and verdict.succeeded == jobs):
        raise SystemExit(f"profiled run failed the SQL check: {verdict}")
    in_sql_s = sum(s for _, _, s in counter.stats.values())
    out = io.StringIO()
    out.write(f"one failfirst worker on PostgreSQL ({parse_store_url(url).redacted.rsplit('/', 1)[0]}"
              f"/<throwaway>), {jobs} jobs, batch {batch}: {elapsed_s:.2f} s under cProfile, "
              f"{jobs / elapsed_s:,.0f} jobs/s (profiling slows Python, not the server)\n\n")
    out.write(f"statements the worker sent, by kind ({in_sql_s:.2f} s waiting on them, "
              f"{100 * in_sql_s / elapsed_s:.0f}% of the run):\n")
    out.write(f"  {'calls':>6} {'rows':>7} {'rows/job':>8} {'seconds':>8}  statement\n")
    for kind, (calls, rows, secs) in sorted(counter.stats.items(), key=lambda kv: -kv[1][2]):
        out.write(f"  {calls:>6} {rows:>7} {rows / jobs:>8.2f} {secs:>8.3f}  {kind}\n")
    total_rows = sum(r for _, r, _ in counter.stats.values())
    out.write(f"  {sum(c for c, _, _ in counter.stats.values()):>6} {total_rows:>7} "
              f"{total_rows / jobs:>8.2f} {in_sql_s:>8.3f}  in all\n\n")
    for sort in ("tottime", "cumulative"):
        out.write(f"top {top} functions by {sort}:\n")
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(sort).print_stats(top)
        out.write(buffer.getvalue().split("\n", 4)[-1].strip("\n") + "\n\n")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--runs", type=int, default=RUNS, help="per system and worker count (median)")
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKER_COUNTS))
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--profile", action="store_true",
                        help=f"also profile one failfirst worker -> {PROFILE.name} beside --out")
    args = parser.parse_args()
    if args.runs < 1 or args.jobs < 1:
        parser.error("--runs and --jobs: at least 1")
    problem = pgtools.server_problem()
    if problem is not None:
        print(f"PostgreSQL not reachable at {parse_store_url(pgtools.admin_url()).redacted}: {problem}",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = measure(args.jobs, args.runs, args.workers, args.batch,
                      log=lambda line: print(line, flush=True))
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"wrote {out}")
    if args.profile:
        report = profile(args.jobs, args.batch)
        path = out.parent / PROFILE.name
        path.write_text(report, encoding="utf-8")
        print(report.split("top ", 1)[0] + f"(the functions: {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
