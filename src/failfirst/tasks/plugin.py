"""The pytest plugin (entry point ``failfirst`` in the ``pytest11`` group): installed
with the package, off until used.

Loading it imports nothing but :mod:`failfirst.tasks.session`; it adds

- the ``failfirst_prove`` fixture: :func:`failfirst.tasks.prove.prove` for this test (calling
  ``failfirst.prove`` directly works the same);
- ``--failfirst-replay=SCHEDULE``: every proof of the selected test replays that one
  schedule and fails with its timeline, comparing the result with the recorded run
  (``pytest 'tests/test_shop.py::test_charge' --failfirst-replay=s1f2:001``: the command
  a failing proof prints);
- a summary at the end of the session, when a test ran a proof: schedules, schedules per
  second, and the time to the first counterexample.

A proof writes what it will run to ``.failfirst/proofs.log`` (under the rootdir) before
it runs, and a counterexample's digest to ``.failfirst/counterexamples/`` (a file per test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from failfirst.proofs.words import plural
from failfirst.tasks import session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("failfirst", "failfirst: your own task under the judge")
    group.addoption("--failfirst-replay", metavar="SCHEDULE", default=None,
                    help="replay this schedule in every failfirst proof of the selected test")
    group.addoption("--failfirst-dir", metavar="DIR", default=None,
                    help="where proofs record what they run (default: <rootdir>/.failfirst)")


def pytest_configure(config: pytest.Config) -> None:
    session.replay_schedule = config.getoption("--failfirst-replay")
    folder = config.getoption("--failfirst-dir")
    session.record_dir = Path(folder) if folder else Path(str(config.rootpath)) / ".failfirst"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    session.current_test = item.nodeid
    yield
    session.current_test = None


@pytest.fixture
def failfirst_prove() -> Callable[..., Any]:
    """:func:`failfirst.tasks.prove.prove`, for this test."""
    from failfirst.tasks import require_extra

    require_extra()
    from failfirst.tasks.prove import prove

    return prove


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not session.proofs:
        return  # off until used
    write = terminalreporter.write_line
    terminalreporter.section("failfirst proofs")
    for p in session.proofs:
        first = (f", first counterexample after {p['first_counterexample_s']:.2f} s"
                 if p["first_counterexample_s"] is not None else "")
        verdict = f"FALSIFIED {p['falsified']}" if p["falsified"] else p["mode"]
        write(f"{p['name']}: {verdict}: {plural(p['schedules'], 'schedule')} "
              f"({p['reached']} reached a fault) "
              f"in {p['elapsed_s']:.2f} s, {p['schedules_per_s']:.0f} schedules/s{first}")
