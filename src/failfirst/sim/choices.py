"""Choice sources: every scheduling and fault decision of a run comes from one.

A run is fully described by (scenario, guardrails, choice sequence). The
sequence is recorded as the run draws it, so any run can be replayed from its
schedule string, enumerated depth-first, or driven by Hypothesis (which then
shrinks the sequence towards zeros: fewer faults, earlier actors). Choice 0
always means "no fault" / "the first ready actor", so shorter and smaller
sequences are simpler schedules, as in Hypothesis's own choice sequences.
"""

from __future__ import annotations

import random
import re
from typing import Protocol

from failfirst.store.echo import shown

#: A schedule string: version, the fault bound it was drawn under, then the choices,
#: e.g. ``s1f2:0102`` — so a schedule found with ``--max-faults 1`` replays under it.
_SCHEDULE = re.compile(r"s1f([0-9]):([0-9a-z]*)", re.ASCII)
#: Digits for one choice; every decision point offers fewer options than this.
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_OPTIONS = len(_DIGITS)


class ScheduleError(ValueError):
    """A schedule string that cannot be replayed against this scenario."""


class ChoiceSource(Protocol):
    def choose(self, n: int, kind: str) -> int:
        """Return an integer in [0, n). ``kind`` is "schedule" or "fault"."""
        ...


class Recorder:
    """Wraps a source and records the decisions that had more than one option."""

    def __init__(self, source: ChoiceSource) -> None:
        self.source = source
        self.choices: list[int] = []
        self.options: list[int] = []

    def choose(self, n: int, kind: str) -> int:
        assert 1 <= n <= MAX_OPTIONS, f"{n} options at one decision point"
        if n == 1:
            return 0  # a forced step is not a choice: it is not recorded
        value = self.source.choose(n, kind)
        assert 0 <= value < n
        self.choices.append(value)
        self.options.append(n)
        return value


class RandomChoices:
    """Seeded pseudo-random decisions; faults fire at ``fault_rate`` of fault points."""

    def __init__(self, seed: int, fault_rate: float = 0.5) -> None:
        self._rng = random.Random(seed)
        self.fault_rate = fault_rate

    def choose(self, n: int, kind: str) -> int:
        if kind == "fault":
            if self._rng.random() >= self.fault_rate:
                return 0
            return 1 + self._rng.randrange(n - 1)
        return self._rng.randrange(n)


class ReplayChoices:
    """Replays a recorded sequence; past its end every decision is 0 (no fault).

    ``strict`` rejects a value out of range (a schedule from another scenario);
    otherwise values wrap, which lets a shrinker edit sequences freely.
    """

    def __init__(self, choices: list[int], strict: bool = True) -> None:
        self._choices = choices
        self._index = 0
        self._strict = strict

    def choose(self, n: int, kind: str) -> int:
        if self._index >= len(self._choices):
            return 0
        value = self._choices[self._index]
        self._index += 1
        if value >= n:
            if self._strict:
                raise ScheduleError(
                    f"choice {self._index} is {value} but that decision has only {n} options"
                )
            value %= n
        return value

    @property
    def exhausted(self) -> bool:
        return self._index >= len(self._choices)


def encode(choices: list[int], max_faults: int) -> str:
    """A printable, copy-pasteable schedule string, e.g. ``s1f2:0102``. Trailing zeros
    are dropped: a replay takes 0 (no fault, first actor) past the end anyway."""
    assert 0 <= max_faults <= 9
    return f"s1f{max_faults}:" + "".join(_DIGITS[c] for c in choices).rstrip("0")


def decode(schedule: str) -> tuple[list[int], int]:
    """Parse a schedule string into (choices, max_faults); ScheduleError says why not."""
    match = _SCHEDULE.fullmatch(schedule.strip())
    if match is None:
        raise ScheduleError(
            f"not a schedule: {shown(schedule)} (expected s1f<max faults>:<choices 0-9a-z>, "
            "e.g. s1f2:0102)"
        )
    return [_DIGITS.index(ch) for ch in match.group(2)], int(match.group(1))
