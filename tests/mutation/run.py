"""``make mutate``: apply each planted bug of :mod:`tests.mutation.mutations` to a
temporary copy of the source tree (never to the working tree), run the fast tests
against the copy, and fail when a mutation survives.

The copy is imported first (``PYTHONPATH``), child processes included; every test is
bounded (``--timeout``), so a mutation that makes a test hang is caught as a failure,
not waited for. ``-x`` stops at the first failing test: a caught mutation costs only
the tests before it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.mutation.mutations import MUTATIONS, Mutation  # noqa: E402

#: The fast tests, the likeliest catchers first (-x stops at the first failure).
FAST_TESTS = (
    "tests/test_surviving_bugs.py", "tests/test_checkers.py", "tests/test_transitions.py",
    "tests/test_store.py", "tests/test_bad_input.py", "tests/test_recovery.py",
    "tests/test_downstream.py", "tests/test_scenario_policies.py", "tests/test_happy_path.py",
    "tests/test_reduction.py", "tests/test_pinned_counts.py", "failure_modes",
)
#: Per test: a hang is a failure, found quickly.
TEST_TIMEOUT_S = 120
#: Per mutation: the whole fast run.
RUN_TIMEOUT_S = 900
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


def _run_tests(tree: Path) -> tuple[bool, str]:
    """True when the fast tests pass (the mutation survived)."""
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}", PYTHONDONTWRITEBYTECODE="1")
    probe = subprocess.run([sys.executable, "-c", "import failfirst, failure_modes; "
                            "print(failfirst.__file__); print(failure_modes.__file__)"],
                           cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert all(line.startswith(str(tree)) for line in probe.stdout.split()), probe.stdout
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             f"--timeout={TEST_TIMEOUT_S}", "--rootdir", str(tree), "-c", str(tree / "pyproject.toml"),
             *[str(tree / t) for t in FAST_TESTS]],
            cwd=tree, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"the fast tests ran over {RUN_TIMEOUT_S} s (caught as a hang)"
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    tail = result.stdout.strip().splitlines()[-1:] if result.stdout.strip() else [result.stderr[-300:]]
    return result.returncode == 0, (lines[0] if lines else tail[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, action="append", metavar="N",
                        help="run mutation N only (1-based; repeatable)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the unmutated copy passes (when it is known to)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the copies are removed
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, start=1) if not args.only or i in args.only]
    started = time.monotonic()  # real-time: the duration is reported, never asserted
    survivors = []
    base = Path(tempfile.mkdtemp(prefix="failfirst-mutate-"))
    try:
        clean = base / "clean"
        _copy_tree(clean)
        ok, why = (True, "") if args.skip_baseline else _run_tests(clean)
        if not ok:
            print(f"the unmutated tree fails its fast tests: {why}")
            return 1
        for i, m in chosen:
            tree = base / f"m{i}"
            shutil.copytree(clean, tree)
            _apply(tree, m)
            t0 = time.monotonic()  # real-time: reported
            survived, why = _run_tests(tree)
            shutil.rmtree(tree, ignore_errors=True)
            verdict = "SURVIVED" if survived else "caught  "
            print(f"{i:2d} {verdict} {time.monotonic() - t0:6.1f} s  {m.path}: {m.breaks}"
                  + ("" if survived else f"\n      by {why}"), flush=True)
            if survived:
                survivors.append(i)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutations caught in "
          f"{time.monotonic() - started:.0f} s" + (f"; survivors: {survivors}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
