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


# -- hardening: bad input, output that cannot be written, internal errors -------------


def test_replay_refuses_a_schedule_with_choices_left_over(capsys):
    _, out, _ = _run(capsys, "run", "FM_001", "--guard", "off", "--seed", "3", "--json")
    schedule = json.loads(out)["schedule"]
    code, out, _ = _run(capsys, "replay", "FM_001", "--guard", "off", "--schedule", schedule, "--json")
    assert code == 0 and json.loads(out)["schedule"] == schedule
    code, out, err = _run(capsys, "replay", "FM_001", "--guard", "off", "--schedule", schedule + "1" * 500)
    assert code == 2 and out == "" and err.count("\n") == 1 and "left over" in err


def test_negative_counts_say_must_be_at_least_one(capsys, tmp_path):
    code, _, err = _run(capsys, "stress", "--db", str(tmp_path / "x.db"), "--jobs", "-5", "--workers", "1")
    assert code == 2 and "must be >= 1" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["explore", "1", "--workers", "100000"],
                                  ["explore", "1", "--mode", "random", "--runs", "100000000"]])
def test_explore_bounds_are_capped_with_a_clear_message(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and "must be in 1.." in err


def test_output_that_cannot_be_written_is_one_line_not_a_traceback():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "failfirst.cli", "list"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == "failfirst: error: cannot write the output: No space left on device\n"


def test_an_unencodable_result_is_printed_escaped_not_lost(tmp_path):
    db = tmp_path / "caf\u00e9.db"
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    result = subprocess.run([sys.executable, "-m", "failfirst.cli", "stress", "--db", str(db),
                             "--jobs", "3", "--workers", "1"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "caf\\xe9.db" in result.stdout and "3 succeeded" in result.stdout


def test_an_internal_value_error_is_not_reported_as_bad_input(capsys, monkeypatch):
    import failfirst.cli as cli

    def broken(args):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["list"])


def _options(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {opt}", act) for opt, act in _options(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield (action.option_strings or [action.dest])[0], action


def test_every_option_has_a_help_line():
    from failfirst.cli import build_parser

    missing = [name for name, action in _options(build_parser()) if not action.help]
    assert missing == []


# -- input as typed: ASCII digits only, every echo shortened (#23) ---------------------


@pytest.mark.parametrize("argv", [
    ["run", "\u0661"],                                  # ARABIC-INDIC DIGIT ONE
    ["run", "FM_\u0966\u0966\u0967"],                   # DEVANAGARI 001
    ["run", "\uff11"],                                  # FULLWIDTH DIGIT ONE
    ["run", "1", "--seed", "\u0663"],
    ["run", "1", "--seed", "1_0"],
    ["explore", "1", "--max-faults", "\u0661"],
    ["replay", "1", "--schedule", "s1f\u0661:01"],
    ["stress", "--db", "x.db", "--jobs", "2", "--workers", "1", "--kill-rate", "\u0661"],
])
def test_digits_of_other_scripts_are_not_numbers(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err


@pytest.mark.parametrize("argv", [
    ["run", "7" * 5000],
    ["run", "x" * 5000],
    ["run", "1", "--seed", "9x" * 2500],
    ["run", "1", "--guard", "o" * 5000],
    ["replay", "1", "--schedule", "s" * 5000],
    ["run", "1", "y" * 5000],
    ["run", "1", "--store", "postgresql://h/db?schema=" + "s" * 5000],
    ["explore", "1", "--reduction", "r" * 5000],
])
def test_long_input_is_echoed_shortened_on_one_line(capsys, argv):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert len(err) < 400, err
    assert "characters)" in err, err


@pytest.mark.parametrize("command", [["check"], ["resume"], ["stress", "--jobs", "1", "--workers", "1"]])
def test_an_empty_db_path_is_bad_input(capsys, command):
    code, out, err = _run(capsys, *command, "--db", "")
    assert code == 2 and out == "" and err.count("\n") == 1 and "empty path" in err
