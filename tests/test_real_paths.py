"""Paths the user names for a real run to write (``make stress``'s ``--db`` and ``--out``,
``make stress-pg``'s ``--pg-folder``, ``make pg-server``'s FOLDER and PORT): anything
that is not what it should be — a directory, a device, a FIFO, an unreachable parent,
someone else's file or folder, a taken port, a missing program — is one line and exit
2 before anything runs, and is left exactly as it was."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys

import pytest

from failfirst.bench import stress_gate
from failfirst.store import paths, pgtools


def _gate(capsys, *argv: str) -> str:
    code = stress_gate.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, (code, out, err)
    return err


def _snapshot(folder) -> dict[str, tuple[int, int]]:
    return {name: (os.lstat(folder / name).st_mode, os.lstat(folder / name).st_size)
            for name in sorted(os.listdir(folder))}


def _odd_things(tmp_path) -> dict[str, str]:
    """A directory, a FIFO, a device, a path under a missing folder: name -> the path."""
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    return {"a directory": str(tmp_path / "dir"), "a FIFO": str(tmp_path / "fifo"),
            "a device": "/dev/null", "a missing folder": str(tmp_path / "no" / "such" / "x")}


@pytest.mark.parametrize("what", ["a directory", "a FIFO", "a device", "a missing folder"])
def test_the_stress_gate_refuses_an_odd_database_path(tmp_path, capsys, what):
    target = _odd_things(tmp_path)[what]
    before = _snapshot(tmp_path)
    err = _gate(capsys, "--db", target, "--jobs", "10", "--out", str(tmp_path / "out.json"))
    assert err.startswith("stress: --db ")
    assert _snapshot(tmp_path) == before and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_the_stress_gate_never_removes_a_database_of_someone_else(tmp_path, capsys):
    theirs = tmp_path / "theirs.db"
    conn = sqlite3.connect(theirs)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = theirs.read_bytes()
    assert "not a failfirst database" in _gate(capsys, "--db", str(theirs), "--out", str(tmp_path / "o"))
    assert theirs.read_bytes() == before


@pytest.mark.parametrize("what", ["a directory", "a FIFO", "a device", "a missing folder"])
def test_the_stress_gate_refuses_an_odd_result_path(tmp_path, capsys, what):
    target = _odd_things(tmp_path)[what]
    before = _snapshot(tmp_path)
    err = _gate(capsys, "--db", str(tmp_path / "s.db"), "--out", target)
    assert err.startswith("stress: --out ")
    assert _snapshot(tmp_path) == before


def _folder_cases(tmp_path) -> dict[str, str]:
    (tmp_path / "file").write_text("keep me\n")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("keep me\n")
    return {**_odd_things(tmp_path), "a file": str(tmp_path / "file"),
            "a folder of someone else's": str(tmp_path / "theirs")}


FOLDER_CASES = ["a file", "a FIFO", "a device", "a missing folder", "a folder of someone else's"]


@pytest.mark.parametrize("what", FOLDER_CASES)
def test_the_pg_gate_refuses_an_odd_folder_before_it_starts_anything(tmp_path, capsys, what):
    target = _folder_cases(tmp_path)[what]
    before = _snapshot(tmp_path)
    err = _gate(capsys, "--pg-folder", target, "--out", str(tmp_path / "out.json"))
    assert err.startswith("stress-pg: --pg-folder ")
    assert _snapshot(tmp_path) == before
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "keep me\n"


def _serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "failfirst.store.pgtools", "serve", *args],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("what", FOLDER_CASES)
def test_pg_server_refuses_an_odd_folder(tmp_path, what):
    target = _folder_cases(tmp_path)[what]
    before = _snapshot(tmp_path)
    done = _serve(target, "55999")
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("pg-server: ")
    assert _snapshot(tmp_path) == before


def test_pg_server_says_its_port_is_in_use_in_one_line(tmp_path):
    if pgtools.binaries_problem():
        pytest.skip(pgtools.binaries_problem())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(str(tmp_path / "pg"), str(port))
    assert done.returncode == 2 and done.stderr == f"pg-server: port {port} in use\n", done.stderr
    assert not (tmp_path / "pg").exists()  # said before initdb


def test_a_missing_initdb_is_named_in_one_line(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # python, and no PostgreSQL
    done = _serve(str(tmp_path / "pg"), "55999", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "initdb" in done.stderr and "install" in done.stderr and "Traceback" not in done.stderr


def test_only_a_folder_failfirst_made_is_ever_removed(tmp_path):
    ours = tmp_path / "ours"
    paths.mark_ours(str(ours))
    (ours / "data").mkdir()
    assert paths.own_folder(str(ours)) == str(ours)  # failfirst's: it may empty it
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "x").write_text("")
    with pytest.raises(paths.PathRefused, match="did not make"):
        paths.own_folder(str(theirs))
    server = pgtools.PrivateServer(str(theirs))
    server.stop = lambda: None  # nothing runs there: only the removal is under test
    server.cleanup()
    assert (theirs / "x").exists()
