"""The matrix: every configuration under every fault that applies to it, several seeds.

``failfirst peers`` (and ``make peers``) call :func:`run_matrix`, which writes
``results.json``: a list of rows, one per (configuration, fault, seed), with the keys
``system``, ``version``, ``config``, ``broker``, ``fault``, ``jobs``, ``kills``,
``struck`` (per kill: the point it aimed at and the point it struck, from the ledger),
``completed``, ``duplicated``, ``lost``, ``failed``, ``stuck``, ``seed`` and a few more
(the quiet period, the time a killed job took to start again, one killed job's timeline).
The file is rewritten after every run, so a broken run leaves the rows before it.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

# deploy registers the deploy faults (sigterm, restart, cut, long-task) after the kill points.
from failfirst.peers import (
    deploy,  # noqa: F401
    faults,
    services,
    sys_arq,
    sys_celery,
    sys_dramatiq,
    sys_failfirst,
    sys_huey,
    sys_pgqueuer,
    sys_procrastinate,
    sys_rq,
)
from failfirst.peers.harness import Adapter, PeersError, PeersInputError, Settings, run_one

__all__ = ["ADAPTERS", "PeersInputError", "check_row", "read", "run_matrix", "runnable", "select"]
from failfirst.peers.judge import CATEGORIES

#: Every configuration, in the order of the chapter's table.
ADAPTERS: list[type[Adapter]] = [
    *sys_failfirst.ADAPTERS, *sys_celery.ADAPTERS, *sys_rq.ADAPTERS, *sys_huey.ADAPTERS,
    *sys_dramatiq.ADAPTERS, *sys_procrastinate.ADAPTERS, *sys_pgqueuer.ADAPTERS, *sys_arq.ADAPTERS,
]


REQUIRED_KEYS = ("system", "version", "config", "broker", "fault", "jobs", "kills", "struck",
                 *CATEGORIES, "seed")
MAX_SEEDS = 100


def select(only: str | None = None) -> list[type[Adapter]]:
    """The configurations whose ``system config broker`` contains ``only`` (case-insensitive)."""
    if only is None:
        return list(ADAPTERS)
    chosen = [a for a in ADAPTERS
              if only.lower() in f"{a.system} {a.config} {a.broker} {a.__name__}".lower()]
    if not chosen:
        raise PeersInputError(f"--only: no configuration matches {only!r}")
    return chosen


def runnable(adapters: Sequence[type[Adapter]]) -> list[type[Adapter]]:
    """The configurations whose servers accept connections now."""
    up = {name: services.reachable(name) for name in services.PORTS}
    return [a for a in adapters if all(up[s] for s in a.services)]


def check_row(row: dict[str, Any]) -> None:
    """The contract of a results row: every key, a kill, each job in one category."""
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if missing:
        raise PeersError(f"row without {missing}: {row}")
    where = f"{row['system']} {row['config']}, {row['fault']}, seed {row['seed']}"
    if row["kills"] < 1 or len(row["struck"]) != row["kills"]:
        raise PeersError(f"{where}: no kill landed on a job")
    for kill in row["struck"]:
        if kill["struck"] != kill["aim"]:
            raise PeersError(f"{where}: a kill aimed at {kill['aim']} struck {kill['struck']} "
                             f"(job {kill['job']}): a failed run, not a result")
    if sum(row[c] for c in CATEGORIES) != row["jobs"]:
        raise PeersError(f"{row['system']} {row['config']}: categories do not add up to {row['jobs']}")


def run_matrix(
    out: str, *, jobs: int = 12, seeds: int = 2, workers: int = 2, work_s: float = 0.3,
    kills: int = 1, only: str | None = None, parallel: int = 1, fault_names: str | None = None,
    full: bool = False, progress: Callable[[str], None] | None = None,
    adapters: Sequence[type[Adapter]] | None = None,
) -> list[dict[str, Any]]:
    """Run every selected configuration under every selected fault that applies to it, with
    seeds 0..seeds-1; write and return the rows.

    ``parallel`` runs that many at once (each in its own process, with its own names);
    ``adapters`` replaces the selection by ``only`` with a list of configurations; ``full``
    runs every cell, not only those a fault runs at CI size (``Fault.at_ci_size``).
    """
    if not 1 <= seeds <= MAX_SEEDS:
        raise PeersInputError(f"--seeds: must be in 1..{MAX_SEEDS}, got {seeds}")
    if not 1 <= kills <= jobs:
        raise PeersInputError(f"--kills: must be in 1..jobs ({jobs}), got {kills}")
    if not 2 <= jobs <= 10_000:
        raise PeersInputError(f"--jobs: must be in 2..10000, got {jobs}")
    if not 1 <= workers <= 8:
        raise PeersInputError(f"--workers: must be in 1..8, got {workers}")
    if not 0.05 <= work_s <= 5:
        raise PeersInputError(f"--work-s: must be in 0.05..5, got {work_s}")
    adapters = select(only) if adapters is None else list(adapters)
    chosen_faults = faults.select(fault_names)
    if not 1 <= parallel <= 4:
        raise PeersInputError(f"--parallel: must be in 1..4, got {parallel}")
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    cells = [(adapter_class, fault) for adapter_class in adapters for fault in chosen_faults
             if fault.applies(adapter_class) and (full or fault.at_ci_size(adapter_class))]
    if not cells:
        raise PeersInputError("--faults: none of them applies to the chosen configurations")
    plan = [(i, adapter_class, fault, Settings(jobs=jobs, workers=workers, work_s=work_s, kills=kills,
                                               seed=seed, timeout_s=120.0 + jobs * work_s * 2
                                               + fault.extra_s(adapter_class)))
            for i, (adapter_class, fault) in enumerate(cells) for seed in range(seeds)]
    done: list[tuple[int, int, dict[str, Any]]] = []
    # A broken run (a service that stopped answering, a kill that struck elsewhere) is
    # reported and the matrix goes on: one bad cell must not cost the hour the others took.
    broken: list[str] = []

    def record(i: int, settings: Settings, outcome: Callable[[], tuple[dict[str, Any], float]]) -> None:
        adapter_class, fault = cells[i]
        try:
            row, took_s = outcome()
            check_row(row)
        except PeersError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            broken.append(f"{adapter_class.system} {adapter_class.config}, {fault.name}, "
                          f"seed {settings.seed}: {first}")
            if progress is not None:
                progress(f"BROKEN {broken[-1]}")
            return
        done.append((i, row["seed"], row))
        done.sort(key=lambda d: (d[0], d[1]))
        _write(out, [d[2] for d in done])
        if progress is not None:
            progress(f"{describe_row(row)}  ({took_s:.0f} s)")

    if parallel == 1:
        for i, adapter_class, fault, settings in plan:
            record(i, settings, functools.partial(_timed_run, adapter_class, fault, settings))
    else:
        # Runs side by side, each in a process of its own (its workers are its children).
        with ProcessPoolExecutor(max_workers=parallel, mp_context=get_context("fork"),
                                 initializer=_unwind_on_signals) as pool:
            futures = {pool.submit(_timed_run, adapter_class, fault, settings): (i, settings)
                       for i, adapter_class, fault, settings in plan}
            try:
                for future in as_completed(futures):
                    record(*futures[future], future.result)
            except BaseException:
                # Ctrl-C (or a harness bug): start nothing more; the runs in progress clean
                # up after themselves (run_one kills its workers whatever happens).
                for future in futures:
                    future.cancel()
                raise
    if broken:
        raise PeersError(f"{len(broken)} of {len(plan)} runs broke ({len(done)} written to {out}): "
                         + "; ".join(broken))
    return [d[2] for d in done]


def _unwind_on_signals() -> None:
    """In a run's process, Ctrl-C and SIGTERM unwind (KeyboardInterrupt), so that run_one's
    ``finally`` kills the run's workers; the parent's handlers are not inherited."""
    def unwind(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, unwind)
    signal.signal(signal.SIGTERM, unwind)


def _timed_run(adapter_class: type[Adapter], fault: type[faults.Fault],
               settings: Settings) -> tuple[dict[str, Any], float]:
    started = time.monotonic()  # real-time: progress report only
    row = run_one(adapter_class(), settings, fault(settings))
    return row, time.monotonic() - started  # real-time: a real run's clock


def _write(out: str, rows: Sequence[dict[str, Any]]) -> None:
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(list(rows), f, indent=1, sort_keys=True)
    os.replace(tmp, out)


def describe_row(row: dict[str, Any]) -> str:
    counts = " ".join(f"{c} {row[c]}" for c in CATEGORIES)
    return (f"{row['system']} {row['version']} on {row['broker']}, {row['config']}, {row['fault']}, "
            f"seed {row['seed']}: {row['jobs']} jobs, {row['kills']} kills: {counts}")


def read(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)
    assert isinstance(rows, list)
    for row in rows:
        check_row(row)
    return rows
