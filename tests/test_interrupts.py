"""Real processes interrupted from outside: no child outlives its parent, an interrupt
is one line and a clean exit, and nothing is left in the temporary directory.

Every wait here is bounded; no assertion is about how long something took beyond
"the children are gone within a couple of seconds of their parent"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

#: How long a child may outlive its parent (issue 23: two seconds, however it dies).
ORPHAN_GRACE_S = 2.0


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def _running_on(db) -> set[int]:
    """Every live process whose command line names ``db`` (orphans included, whoever
    adopted them)."""
    out = set()
    needle = str(db).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read() and _alive(int(entry)):
                    out.add(int(entry))
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s  # real-time: a bounded wait for real processes
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # real-time: polling a real process
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def _start(tmp_path, *argv: str) -> subprocess.Popen[str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(scratch))
    return subprocess.Popen([sys.executable, "-m", "failfirst.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


#: A hang guard on a signalled command's exit (not a measurement: a loaded machine may
#: need long; a healthy exit takes a fraction of a second).
EXIT_GUARD_S = 300


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=EXIT_GUARD_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode, out, err


def _stress(tmp_path) -> subprocess.Popen[str]:
    # 50 kills a second keep the workers restarting: the run is always interrupted
    # mid-way, and a worker has often only just started when its parent dies.
    return _start(tmp_path, "stress", "--db", str(tmp_path / "s.db"), "--jobs", "50000",
                  "--workers", "2", "--kill-rate", "50")


def _restarts(db) -> int:
    """Restarted workers so far, from the file (0 while it is being created)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM events WHERE kind = 'restart'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.fixture
def cpu_hogs():
    """Two CPU-bound processes (``yes > /dev/null``) beside the test: the load under which a
    child once outlived its parent by 10 s. Killed afterwards."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, start_new_session=True)
            for _ in range(2)]
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait(timeout=10)


def _wait_for_run(proc, predicate, what: str):
    """Wait for an event of a running stress; its end before the event is a setup error."""
    def seen():
        if proc.poll() is not None:
            pytest.fail(f"setup: the stress run ended (exit {proc.returncode}) before {what}")
        return predicate()
    return _wait_for(seen, 300, what)


@pytest.mark.parametrize("restarted", [1, 5], ids=["early", "mid-run"])
def test_no_child_outlives_a_sigkilled_stress_parent_under_cpu_load(tmp_path, cpu_hogs, restarted):
    """SIGKILL of ``failfirst stress`` while its workers are being killed and restarted (so
    some are still starting up, importing): every child — workers and the watchdog — is
    gone within two seconds, with two CPU hogs running."""
    db = tmp_path / "s.db"
    proc = _stress(tmp_path)
    try:
        _wait_for_run(proc, lambda: _restarts(db) >= restarted, f"{restarted} worker restarts")
        # The moment a worker has just been started again: it is still importing, the
        # window where a child that binds itself to its parent late outlives it.
        seen = _restarts(db)
        _wait_for_run(proc, lambda: _restarts(db) > seen, "one more restart")
        children = _children(proc.pid)  # the watchdog and the workers (one may be restarting)
        assert len(children) >= 2, children
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for(lambda: not (_running_on(db) or any(_alive(pid) for pid in children)),
                  ORPHAN_GRACE_S, "every child to die with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert os.listdir(tmp_path / "tmp") == []  # the children's logs were anonymous files


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_stress_interrupted_is_one_line_and_leaves_nothing(tmp_path, sig, code, word):
    proc = _stress(tmp_path)
    _wait_for(lambda: len(_children(proc.pid)) >= 2, 120, "the worker processes")
    os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole foreground group
    rc, out, err = _finish(proc)
    assert rc == code, err
    assert err.count("\n") == 1 and err.startswith(f"failfirst: {word}") and "resume" in err
    assert "Traceback" not in err and out == ""
    _wait_for(lambda: not _running_on(tmp_path / "s.db"), ORPHAN_GRACE_S, "the workers to stop")
    assert os.listdir(tmp_path / "tmp") == []


def _checkpoint_schedules(path) -> int | None:
    """Schedules the explorer's checkpoint counts (None: not written yet, or mid-write)."""
    import json

    try:
        with open(path) as f:
            return json.load(f)["state"]["tally"]["schedules"]
    except (OSError, ValueError, KeyError):
        return None


def test_explore_interrupted_is_one_line(tmp_path):
    """Waits for the events it needs, never for time: the pool's workers exist and the
    checkpoint says subtrees are done (the exploration is under way in them), then Ctrl-C.
    An exploration that ended before it could be interrupted is a failed setup."""
    checkpoint = tmp_path / "explore.ckpt"
    # --all and two workers: the exploration forks a pool, which must stay quiet too. The
    # symmetry reduction alone at three faults: a pool starts at once and has a minute of
    # work, so it is still running when the signal comes.
    proc = _start(tmp_path, "explore", "FM_001", "--all", "--max-faults", "3", "--workers", "2",
                  "--reduction", "symmetry", "--checkpoint", str(checkpoint))

    def under_way():
        if proc.poll() is not None:
            pytest.fail(f"setup: the exploration ended (exit {proc.returncode}) before it was "
                        f"interrupted: {proc.stderr.read() if proc.stderr else ''}")
        return _children(proc.pid) if (_checkpoint_schedules(checkpoint) or 0) > 0 else None

    kids = _wait_for(under_way, 300, "the explorer's workers and its first checkpointed subtree")
    os.killpg(proc.pid, signal.SIGINT)
    rc, out, err = _finish(proc)
    assert (rc, out) == (130, ""), err
    assert err == (f"failfirst: interrupted; {checkpoint} keeps its progress "
                   "(the same command resumes it)\n")
    _wait_for(lambda: not any(_alive(pid) for pid in kids), ORPHAN_GRACE_S, "the explorer's workers")
    assert (_checkpoint_schedules(checkpoint) or 0) > 0, "the checkpoint survives the interrupt"


def test_a_worker_whose_parent_is_already_gone_exits_at_once(tmp_path):
    """The window before the parent-death request: a child told its parent is a pid that
    is not its parent (as after a reparenting) stops before doing anything."""
    db = tmp_path / "w.db"
    result = subprocess.run(
        [sys.executable, "-m", "failfirst.realrun.process", "worker", "--db", str(db), "--name", "w1",
         "--parent-pid", "1", "--max-runtime-s", "60"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and not db.exists()


_PARENT = """
import os, subprocess, sys, time
from failfirst.realrun.fleet import Fleet
from failfirst.realrun.process import RealConfig
fleet = Fleet(sys.argv[1], False, True, RealConfig(max_runtime_s=60.0))
worker = fleet.spawn("w1")
other = subprocess.Popen(["sleep", "60"], process_group=fleet._group())  # a member without PDEATHSIG
print(worker.proc.pid, other.pid, fleet._watchdog.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("guard", ["parent-death signal", "watchdog"])
def test_a_worker_still_starting_dies_with_its_parent(tmp_path, guard):
    """Two guarantees, each tested alone. A worker is bound to its parent before its
    interpreter starts: a child whose start takes seconds (a loaded machine; here a
    ``sitecustomize`` that sleeps five) dies with its parent at once, even with the
    watchdog gone, not when it gets round to asking. And the watchdog kills every member
    of the workers' process group, even one that asked the kernel for nothing."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(5)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(slow), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path / "w.db")], env=env,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker, other, watchdog = (int(p) for p in parent.stdout.readline().split())
        assert _alive(worker) and _alive(other) and _alive(watchdog)
        if guard == "parent-death signal":
            os.kill(watchdog, signal.SIGKILL)
            _wait_for(lambda: not _alive(watchdog), 10, "the watchdog to die")
            must_die = [worker]
        else:
            must_die = [other, watchdog]
        parent.kill()
        parent.wait(timeout=10)
        _wait_for(lambda: not any(_alive(pid) for pid in must_die), ORPHAN_GRACE_S,
                  f"{must_die} to die with their parent ({guard})")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        for pid in (worker, other):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_an_interrupted_store_url_run_names_the_command_that_finishes_it(tmp_path):
    """``--store sqlite:PATH``: the same hint as ``--db`` gives, naming the store as given."""
    db = tmp_path / "u.db"
    proc = _start(tmp_path, "stress", "--store", f"sqlite:{db}", "--jobs", "50000", "--workers", "2",
                  "--kill-rate", "50")
    _wait_for_run(proc, lambda: _restarts(db) >= 1, "a worker restart")
    proc.send_signal(signal.SIGINT)
    rc, out, err = _finish(proc)
    assert rc == 130 and out == "" and err.count("\n") == 1, err
    assert f"keeps its jobs (failfirst resume --store sqlite:{db} finishes them)" in err
