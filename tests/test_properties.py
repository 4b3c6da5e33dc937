"""Property tests (Hypothesis) for every parser at the boundary: schedule strings, the
failure-mode id, database paths and the history's JSON Lines."""

from __future__ import annotations

import io
import os
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failfirst.cli import main
from failfirst.sim import catalogue, history
from failfirst.sim.choices import MAX_OPTIONS, ScheduleError, decode, encode
from failfirst.store import Store
from failfirst.store.clock import RealClock

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True)
SLOW = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
choices = st.lists(st.integers(0, MAX_OPTIONS - 1), max_size=60)


# -- schedule strings -------------------------------------------------------------------

@SETTINGS
@given(choices, st.integers(0, 9))
def test_a_printed_schedule_parses_back(values, max_faults):
    text = encode(values, max_faults)
    parsed, faults = decode(text)
    trimmed = list(values)
    while trimmed and trimmed[-1] == 0:  # printing drops trailing zeros: replay takes 0 there
        trimmed.pop()
    assert (parsed, faults) == (trimmed, max_faults)
    assert encode(parsed, faults) == text


@SETTINGS
@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_as_a_schedule(text):
    try:
        values, faults = decode(text)
    except ScheduleError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert 0 <= faults <= 9 and all(0 <= v < MAX_OPTIONS for v in values)


@SLOW
@given(st.one_of(st.text(max_size=20), choices.map(lambda v: encode(v, 1))))
def test_replay_of_any_schedule_exits_0_or_2_with_one_line(capsys, schedule):
    code = main(["replay", "FM_001", "--schedule", schedule, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert out == "" and err.count("\n") == 1 and err.startswith("failfirst: error: ")
    else:
        assert err == ""


# -- failure-mode ids -------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 999), st.sampled_from(["FM_{:03d}", "fm_{:03d}", "FM_{}", "fm{}", "{}", " {} "]))
def test_every_spelling_of_an_id_names_the_same_failure_mode(n, spelling):
    assert catalogue.normalise_id(spelling.format(n)) == f"FM_{n:03d}"


@SETTINGS
@given(st.text(max_size=12))
def test_any_text_is_an_id_or_refused(text):
    try:
        fm = catalogue.normalise_id(text)
    except catalogue.UnknownFailureMode as exc:
        assert "\n" not in str(exc)
        return
    assert fm.startswith("FM_") and len(fm) == 6 and fm[3:].isdigit() and fm != "FM_000"


# -- database paths ---------------------------------------------------------------------

path_chars = st.sampled_from(list(string.ascii_letters + string.digits + " #?%&=+-_.,;:'\"!@$()[]{}~\n\t")
                             + ["\u00e9", "\u4e2d", "\U0001f600"])


@SLOW
@given(st.text(path_chars, min_size=1, max_size=24).filter(lambda n: n not in (".", "..")))
def test_a_database_path_reaches_exactly_the_file_it_names(tmp_path_factory, name):
    directory = tmp_path_factory.mktemp("paths")
    path = os.path.join(str(directory), name)
    store = Store.open_file(path, RealClock())
    store.close()
    assert os.listdir(directory) == [name]  # that file, nothing beside it
    again = Store.open_file(path, RealClock(), create=False)
    assert again.jobs() == []
    again.close()


# -- the history's JSON Lines -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
events = st.lists(st.fixed_dictionaries(
    {f: json_values for f in history.EVENT_FIELDS},
    optional={"part": st.text(max_size=5), "reason": st.text(max_size=20)}), max_size=8)


@SETTINGS
@given(events)
def test_a_written_history_reads_back_equal(evs):
    out = io.StringIO()
    history.write_jsonl(evs, out)
    assert history.read_jsonl(io.StringIO(out.getvalue())) == evs


@SETTINGS
@given(st.text(max_size=80))
def test_any_text_reads_as_events_or_is_refused_naming_the_line(text):
    try:
        evs = history.read_jsonl(io.StringIO(text))
    except ValueError as exc:
        assert str(exc).startswith("line ")
        return
    assert all(isinstance(e, dict) and set(history.EVENT_FIELDS) <= set(e) for e in evs)
