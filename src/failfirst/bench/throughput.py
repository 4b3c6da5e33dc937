"""Throughput on a SQLite file: failfirst beside huey's SqliteHuey, in one run.

For each worker count, both systems get the same job count, the same handler
effect (one row inserted in an ``effects`` table of a WAL-mode SQLite file), the
same durability settings (WAL, ``synchronous=NORMAL``) and the same number of
worker processes. All jobs are enqueued first; the clock runs from starting the
worker processes until the parent sees the last effect row (failfirst: every job
terminal), polling both the same way. Runs alternate between the systems so
that a noisy machine slows both alike; each figure is the median of ``--runs``.

After every failfirst run the file is judged like a stress run (``lost`` 0,
``duplicate_effects`` 0, every invariant checker clean), and after every huey
run its effect rows are counted (exactly ``--jobs``, all distinct). A run that
fails its check aborts the benchmark.

Run with ``make bench``; writes ``_build/bench/throughput.json``. Figures are
wall-clock measurements of this machine: a benchmark, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failfirst.bench import BUILD
from failfirst.realrun.driver import DEFAULT_BATCH, stress
from failfirst.store import Store
from failfirst.store.clock import RealClock

#: Where `make bench` writes its results, and where the Performance chapter reads them.
RESULTS = BUILD / "bench" / "throughput.json"
#: The benchmark's size: what `make bench` runs and what the book publishes.
JOBS, RUNS, WORKER_COUNTS = 10_000, 5, (1, 2)
POLL_S = 0.01
TIMEOUT_S = 300.0


def failfirst_run(db: str, jobs: int, workers: int, batch: int) -> float:
    result = stress(db=db, jobs=jobs, workers=workers, kill_rate=0.0, guard=True, seed=0,
                    batch=batch)
    ok = (result["lost"] == 0 and result["duplicate_effects"] == 0 and not result["violations"]
          and result["succeeded"] == jobs)
    if not ok:
        raise SystemExit(f"failfirst run broke exactly-once: {json.dumps(result)}")
    return jobs / result["elapsed_s"]


def huey_run(db: str, jobs: int, workers: int) -> float:
    env = {**os.environ, "FAILFIRST_HUEY_DB": db}
    # Enqueue in a child too, so the parent never imports huey_app with another DB.
    subprocess.run([sys.executable, "-c", f"import failfirst.bench.huey_app as h; h.create_effects_table(); "
                    f"[h.write_one_row(n) for n in range({jobs})]"], env=env, check=True)
    conn = sqlite3.connect(db, isolation_level=None, timeout=30.0)
    started = time.monotonic()  # real-time: benchmark clock
    consumer = subprocess.Popen(
        [sys.executable, "-c", f"import failfirst.bench.huey_app as h; h.run_consumer({workers})"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        while True:
            # max(id) is O(log n) and equals the row count (rows are never deleted).
            if (conn.execute("SELECT max(id) FROM effects").fetchone()[0] or 0) >= jobs:
                elapsed_s = time.monotonic() - started  # real-time: benchmark clock
                break
            if consumer.poll() is not None:
                raise SystemExit(f"huey consumer exited: {consumer.stderr.read().decode()[-2000:]}")
            if time.monotonic() - started > TIMEOUT_S:  # real-time: benchmark clock
                raise SystemExit(f"huey run timed out after {TIMEOUT_S:g} s")
            time.sleep(POLL_S)  # real-time: benchmark clock
    finally:
        if consumer.poll() is None:
            os.killpg(consumer.pid, signal.SIGTERM)
            try:
                consumer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(consumer.pid, signal.SIGKILL)
                consumer.wait()
    rows, distinct = conn.execute("SELECT count(*), count(DISTINCT n) FROM effects").fetchone()
    conn.close()
    if rows != jobs or distinct != jobs:
        raise SystemExit(f"huey run: {rows} effect rows, {distinct} distinct, expected {jobs}")
    return jobs / elapsed_s


def durability(tmp: str) -> dict[str, dict[str, str]]:
    """The settings each system's connections actually run with, read back from SQLite."""
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    store = Store.open_file(os.path.join(tmp, "settings-failfirst.db"), RealClock())
    conn = store._conn  # read-only inspection of the store's own connection
    ff = {"journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
          "synchronous": names[conn.execute("PRAGMA synchronous").fetchone()[0]]}
    store.close()
    env = {**os.environ, "FAILFIRST_HUEY_DB": os.path.join(tmp, "settings-huey.db")}
    out = subprocess.run(
        [sys.executable, "-c", "import failfirst.bench.huey_app as h; c = h.huey.storage.conn; print("
         "c.execute('PRAGMA journal_mode').fetchone()[0], c.execute('PRAGMA synchronous')"
         ".fetchone()[0])"], env=env, check=True, capture_output=True, text=True,
    ).stdout.split()
    return {"failfirst": ff, "huey": {"journal_mode": out[0], "synchronous": names[int(out[1])]}}


def measure(
    jobs: int, runs: int, worker_counts: list[int], batch: int, tmp: str,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Both systems side by side; one result object per worker count."""
    import huey  # the version goes with the figures

    settings = durability(tmp)
    log(f"durability: failfirst {settings['failfirst']}, huey {settings['huey']}")
    results = []
    for workers in worker_counts:
        ff_runs: list[float] = []
        huey_runs: list[float] = []
        for run in range(runs):
            # Alternate which system goes first, so drift in the machine's load is shared.
            order = ("failfirst", "huey") if run % 2 == 0 else ("huey", "failfirst")
            for system in order:
                db = os.path.join(tmp, f"{system}-{workers}-{run}.db")
                if system == "failfirst":
                    ff_runs.append(failfirst_run(db, jobs, workers, batch))
                else:
                    huey_runs.append(huey_run(db, jobs, workers))
                for suffix in ("", "-wal", "-shm"):
                    Path(db + suffix).unlink(missing_ok=True)
            log(f"  workers {workers} run {run + 1}: failfirst {ff_runs[-1]:,.0f} jobs/s, "
                f"huey {huey_runs[-1]:,.0f} jobs/s")
        ff, hu = statistics.median(ff_runs), statistics.median(huey_runs)
        results.append({
            "workers": workers,
            "failfirst_jobs_per_s": round(ff, 1),
            "huey_jobs_per_s": round(hu, 1),
            "ratio": round(ff / hu, 2),
            "jobs": jobs,
            "runs": runs,
            "batch": batch,
            "failfirst_runs_jobs_per_s": [round(x, 1) for x in ff_runs],
            "huey_runs_jobs_per_s": [round(x, 1) for x in huey_runs],
            "failfirst_durability": settings["failfirst"],
            "huey_durability": settings["huey"],
            "huey_version": huey.__version__,
            "exactly_once_verified": True,
        })
        log(f"workers {workers}: failfirst {ff:,.0f} jobs/s, huey {hu:,.0f} jobs/s, "
            f"ratio {ff / hu:.2f} (median of {runs}, {jobs} jobs each)")
    return results


def load_results(path: Path = RESULTS) -> list[dict[str, Any]] | None:
    """The results `make bench` wrote, or None when there are none."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKER_COUNTS))
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs: at least 3 (the figures are medians)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="failfirst-bench-", dir=out.parent) as tmp:
        results = measure(args.jobs, args.runs, args.workers, args.batch, tmp,
                          log=lambda line: print(line, flush=True))
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
