"""``make mutate``: apply each planted bug of ``tests/mutation/mutations.py`` to a
temporary copy of the source tree (never to the working tree), run the fast tests
against the copy, and fail when a mutation survives.

The copy is imported first (``PYTHONPATH``), child processes included; every test is
bounded (``--timeout``), so a mutation that makes a test hang is caught as a failure,
not waited for. ``-x`` stops at the first failing test: a caught mutation costs only
the tests before it, so each mutation's own likeliest catchers (``Mutation.tests``) run
first and the other fast tests after them.

A mutation of the PostgreSQL store is judged by the PostgreSQL half of the fast tests:
without a server those tests skip, so the run refuses to judge it and fails, rather than
count it as caught or as survived. ``--without FILE`` leaves a test file out (to measure
what it catches: the kill rate with and without it); the summary counts per module.
``--out FILE`` writes the results as JSON too (each mutation's verdict and the kill rate
per module), for the book's contributing chapter to publish.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The planted bugs beside this file, imported by their folder: in a test session the name
# ``tests`` may be another package (examples/shop has a ``tests`` package of its own).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import MUTATIONS, Mutation  # noqa: E402

#: The fast tests, the likeliest catchers first (-x stops at the first failure).
FAST_TESTS = (
    "tests/test_surviving_bugs.py", "tests/test_checkers.py", "tests/test_transitions.py",
    "tests/test_store.py", "tests/test_bad_input.py", "tests/test_recovery.py",
    "tests/test_downstream.py", "tests/test_scenario_policies.py", "tests/test_happy_path.py",
    # issue 26: both stores' edge cases, recovery, refinement, the differential's control,
    # the reduction's dependency relation and the pinned schedule counts
    "tests/test_store_conformance.py", "tests/test_recovery_branches.py",
    "tests/test_service_recovery.py", "tests/test_refinement.py",
    "tests/test_differential_control.py", "tests/test_reduction.py", "tests/test_pinned_counts.py",
    "tests/test_peers_judge.py",
    "failure_modes",
)
#: Mutations of these files are judged only with a PostgreSQL server (their tests skip without).
NEEDS_POSTGRESQL = ("src/failfirst/store/postgresql.py",)
#: Per test: a hang is a failure, found quickly.
TEST_TIMEOUT_S = 120
#: Per mutation: the whole fast run.
RUN_TIMEOUT_S = 900
#: Mutations judged at once (each runs its own pytest processes).
MAX_JOBS = 8
COPIED = ("src", "tests", "failure_modes", "pyproject.toml")


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def _apply(tree: Path, m: Mutation) -> None:
    path = tree / m.path
    text = path.read_text()
    assert text.count(m.old) == 1, f"{m.path}: the text to mutate occurs {text.count(m.old)} times"
    path.write_text(text.replace(m.old, m.new))


def _test_order(first: tuple[str, ...], without: tuple[str, ...]) -> list[str]:
    """The mutation's own catchers first, then the other fast tests; none of ``without``."""
    chosen = [t for t in dict.fromkeys((*first, *FAST_TESTS)) if t not in without]
    assert chosen, "no fast test left to run"
    return chosen


def _run_tests(tree: Path, tests: list[str], marks: str | None = None) -> tuple[bool, str]:
    """True when the fast tests pass (the mutation survived); with ``marks``, only the
    tests so marked run, and none being so marked counts as passing."""
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}", PYTHONDONTWRITEBYTECODE="1")
    probe = subprocess.run([sys.executable, "-c", "import failfirst, failure_modes; "
                            "print(failfirst.__file__); print(failure_modes.__file__)"],
                           cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert all(line.startswith(str(tree)) for line in probe.stdout.split()), probe.stdout
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             f"--timeout={TEST_TIMEOUT_S}", "--rootdir", str(tree), "-c", str(tree / "pyproject.toml"),
             *(["-m", marks] if marks else []), *[str(tree / t) for t in tests]],
            cwd=tree, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"the fast tests ran over {RUN_TIMEOUT_S} s (caught as a hang)"
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    tail = result.stdout.strip().splitlines()[-1:] if result.stdout.strip() else [result.stderr[-300:]]
    passed = result.returncode == 0 or (marks is not None and result.returncode == NO_TESTS_COLLECTED)
    return passed, (lines[0] if lines else tail[0])


#: pytest's exit status when no test was selected.
NO_TESTS_COLLECTED = 5


def _judge(tree: Path, m: Mutation, without: tuple[str, ...]) -> tuple[bool, str]:
    """True when the mutation survived every fast test. First the mutation's own
    catchers alone, on the backend it mutates: a failure there is a catch, found without
    collecting the rest. When they pass, every fast test (so a survivor is a survivor of
    the whole set)."""
    first = [t for t in m.tests if t not in without]
    if first:
        marks = "postgresql" if m.path in NEEDS_POSTGRESQL else "not postgresql"
        survived, why = _run_tests(tree, first, marks)
        if not survived:
            return survived, why
    return _run_tests(tree, _test_order(m.tests, without))


def _judge_copy(base: Path, i: int, m: Mutation, without: tuple[str, ...]) -> tuple[bool, str, float]:
    """Mutation ``i`` on a copy of ``base/clean`` of its own: (survived, why, seconds)."""
    tree = base / f"m{i}"
    shutil.copytree(base / "clean", tree)
    try:
        _apply(tree, m)
        t0 = time.monotonic()  # real-time: reported
        survived, why = _judge(tree, m, without)
        return survived, why, time.monotonic() - t0  # real-time: reported
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, action="append", metavar="N",
                        help="run mutation N only (1-based; repeatable)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the unmutated copy passes (when it is known to)")
    parser.add_argument("--without", action="append", default=[], metavar="FILE",
                        help="leave this fast test file out (repeatable): what do the others catch?")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="also write the results as JSON to FILE (its folder is created)")
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, MAX_JOBS), metavar="N",
                        help=f"judge N mutations at once, each in its own copy (1..{MAX_JOBS}; "
                             "default: the machine's cores)")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= MAX_JOBS:
        parser.error(f"--jobs: must be in 1..{MAX_JOBS}, got {args.jobs}")
    without = tuple(args.without)
    unknown = [f for f in without if f not in FAST_TESTS]
    if unknown:
        parser.error(f"--without: not a fast test: {', '.join(unknown)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the copies are removed
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, start=1) if not args.only or i in args.only]
    pg_problem = _postgresql_problem() if any(m.path in NEEDS_POSTGRESQL for _, m in chosen) else None
    started = time.monotonic()  # real-time: the duration is reported, never asserted
    survivors = []
    verdicts: list[dict] = []
    caught_by_module: collections.Counter[str] = collections.Counter()
    total_by_module: collections.Counter[str] = collections.Counter()
    base = Path(tempfile.mkdtemp(prefix="failfirst-mutate-"))
    try:
        clean = base / "clean"
        _copy_tree(clean)
        ok, why = (True, "") if args.skip_baseline else _run_tests(clean, _test_order((), without))
        if not ok:
            print(f"the unmutated tree fails its fast tests: {why}")
            return 1
        to_judge = []
        for i, m in chosen:
            total_by_module[m.path] += 1
            if m.path in NEEDS_POSTGRESQL and pg_problem is not None:
                print(f"{i:2d} NOT RUN  {m.path}: {m.breaks}\n      no PostgreSQL: {pg_problem}",
                      flush=True)
                survivors.append(i)
                verdicts.append(_verdict(i, m, "not run", f"no PostgreSQL: {pg_problem}"))
            else:
                to_judge.append((i, m))
        # Each mutation in its own copy and its own pytest processes: judged side by side.
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("fork")) as pool:
            futures = {pool.submit(_judge_copy, base, i, m, without): (i, m) for i, m in to_judge}
            for future in as_completed(futures):
                i, m = futures[future]
                survived, why, took_s = future.result()
                caught_by_module[m.path] += not survived
                verdict = "SURVIVED" if survived else "caught  "
                print(f"{i:2d} {verdict} {took_s:6.1f} s  {m.path}: {m.breaks}"
                      + ("" if survived else f"\n      by {why}"), flush=True)
                verdicts.append(_verdict(i, m, "survived" if survived else "caught", why))
                if survived:
                    survivors.append(i)
        verdicts.sort(key=lambda v: v["id"])
        survivors.sort()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for path in sorted(total_by_module):
        print(f"   {caught_by_module[path]:2d} of {total_by_module[path]:2d} caught  {path}")
    elapsed_s = time.monotonic() - started  # real-time: reported, never asserted
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutations caught in "
          f"{elapsed_s:.0f} s" + (f"; survivors: {survivors}" if survivors else ""))
    if args.out is not None:
        _write_results(args.out, verdicts, caught_by_module, total_by_module,
                       complete=not args.only and not without, without=without, elapsed_s=elapsed_s)
    return 1 if survivors else 0


def _verdict(i: int, m: Mutation, verdict: str, why: str) -> dict:
    return {"id": i, "module": m.path, "breaks": m.breaks, "verdict": verdict,
            "by": why if verdict == "caught" else None,
            "note": why if verdict == "not run" else None}


def _write_results(out: Path, verdicts: list[dict], caught: collections.Counter[str],
                   total: collections.Counter[str], *, complete: bool, without: tuple[str, ...],
                   elapsed_s: float) -> None:
    """The run as JSON: per module, planted bugs and how many the fast tests caught
    (the kill rate); per mutation, its verdict. ``complete`` is false when ``--only`` or
    ``--without`` chose a part: such a file is not the project's kill rate."""
    results = {
        "complete": complete,
        "without": list(without),
        "mutations": len(verdicts),
        "caught": sum(caught.values()),
        "survived": [v["id"] for v in verdicts if v["verdict"] == "survived"],
        "not_run": [v["id"] for v in verdicts if v["verdict"] == "not run"],
        "by_module": [{"module": path, "caught": caught[path], "total": total[path],
                       "kill_rate": caught[path] / total[path]} for path in sorted(total)],
        "each": verdicts,
        "elapsed_s": round(elapsed_s, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(out)  # a reader never sees half a file
    print(f"results: {out}")


def _postgresql_problem() -> str | None:
    """None when the PostgreSQL tests can run; else why not, in one line."""
    from failfirst.store import pgtools

    return pgtools.server_problem()


if __name__ == "__main__":
    sys.exit(main())
