"""The command-line contract: ids, JSON keys, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from failfirst.cli import main

RUN_KEYS = {"fm", "guard", "seed", "violations", "digest", "events"}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spelling", ["FM_001", "fm_001", "FM_1", "1", "fm1"])
def test_id_spellings_name_fm001(capsys, spelling):
    code, out, _ = _run(capsys, "run", spelling, "--json")
    assert code == 0 and json.loads(out)["fm"] == "FM_001"


def test_guard_off_reports_inv001_and_guard_on_none(capsys):
    _, out, _ = _run(capsys, "run", "FM_001", "--guard", "off", "--json")
    off = json.loads(out)
    assert RUN_KEYS <= set(off)
    assert "INV_001" in {v["invariant"] for v in off["violations"]}
    for v in off["violations"]:
        assert {"invariant", "job", "detail"} <= set(v)
    _, out, _ = _run(capsys, "run", "FM_001", "--guard", "on", "--json")
    assert json.loads(out)["violations"] == []


def test_history_file_is_json_lines(capsys, tmp_path):
    path = tmp_path / "h.jsonl"
    code, out, _ = _run(capsys, "run", "1", "--guard", "off", "--history", str(path), "--json")
    lines = path.read_text().splitlines()
    assert code == 0 and len(lines) == json.loads(out)["events"]
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, len(lines) + 1))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "FM_999"],
        ["run", "banana"],
        ["run", "FM_001", "--seed", "-3"],
        ["run", "FM_001", "--seed", "x"],
        ["run", "FM_001", "--guard", "maybe"],
        ["run", "FM_001", "--bogus"],
        ["replay", "FM_001", "--schedule", "nonsense"],
        ["replay", "FM_001", "--schedule", "s1f2:zz"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("failfirst: error: ")


def test_list_names_fm001(capsys):
    _, out, _ = _run(capsys, "list", "--json")
    assert "FM_001" in [row["id"] for row in json.loads(out)]


def test_console_script_same_digest_under_two_hash_seeds():
    digests = set()
    for hash_seed in ("1", "99"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-m", "failfirst.cli", "run", "FM_001", "--seed", "7",
                              "--json"], env=env, capture_output=True, text=True, check=True)
        digests.add(json.loads(out.stdout)["digest"])
    assert len(digests) == 1
