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


class PCTChoices:
    """Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and Nagarakatte,
    "A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010),
    with faults placed the same way.

    Scheduling: every actor gets a random priority when it is first offered, all above
    ``depth - 1``; at each scheduling decision the highest-priority ready actor steps.
    ``depth - 1`` priority change points are drawn uniformly among the ``steps`` steps
    of a run; when the i-th is reached, the actor that steps there drops to priority i
    (below every initial one). For a bug of depth ``d <= depth`` (d ordering constraints
    between steps) in a run of at most ``k`` steps with ``n`` actors, one run finds it
    with probability at least ``1 / (n * k ** (d - 1))``.

    Faults: a fault count ``m`` is drawn uniformly in ``0..max_faults``, then ``m`` of
    the ``fault_decisions`` fault decisions of a run, uniformly, and a fault kind
    uniformly at each; every other fault decision is "no fault". A bug that needs ``m``
    given faults (decision and kind) is then hit with probability at least
    ``1 / ((max_faults + 1) * C(F, m) * c ** m)`` for ``c`` kinds at most per decision,
    times the scheduling bound: see :func:`failfirst.proofs.pct.bound`.

    The scheduler tells the source which actors are offered (``see_ready``) and which
    one steps (``stepped``), forced steps included, so that steps are counted as PCT
    counts them. Seeded: the same seed gives the same run.
    """

    def __init__(self, seed: int, *, depth: int, steps: int, fault_decisions: int,
                 max_faults: int) -> None:
        assert depth >= 1 and steps >= 1 and fault_decisions >= 0 and max_faults >= 0
        self._rng = random.Random(seed)
        self.depth = depth
        # The i-th change point (1-based step number) lowers its actor to priority i.
        change_points = self._rng.sample(range(1, steps + 1), min(depth - 1, steps))
        self._lower_at = {step: i + 1 for i, step in enumerate(sorted(change_points))}
        faults = self._rng.randint(0, max_faults)
        self._fault_at = frozenset(self._rng.sample(range(fault_decisions),
                                                    min(faults, fault_decisions)))
        self._priority: dict[str, float] = {}
        self._offered: list[str] = []
        self._steps = 0
        self._fault_decisions = 0

    def see_ready(self, names: list[str]) -> None:
        for name in names:
            if name not in self._priority:  # a random rank among the initial priorities
                self._priority[name] = self.depth + self._rng.random()
        self._offered = names

    def stepped(self, name: str) -> None:
        self._steps += 1
        lowered = self._lower_at.get(self._steps)
        if lowered is not None:
            self._priority[name] = float(lowered)

    def choose(self, n: int, kind: str) -> int:
        if kind == "fault":
            at = self._fault_decisions
            self._fault_decisions += 1
            return 1 + self._rng.randrange(n - 1) if at in self._fault_at else 0
        assert len(self._offered) == n, "the scheduler names the actors it offers"
        return max(range(n), key=lambda i: self._priority[self._offered[i]])


class CountingChoices:
    """Every decision 0 (no fault, the first ready actor), counting what PCT needs to
    know of a scenario: actors offered, steps taken, fault decisions met."""

    def __init__(self) -> None:
        self.actors: set[str] = set()
        self.steps = 0
        self.fault_decisions = 0
        self.most_kinds = 0

    def see_ready(self, names: list[str]) -> None:
        self.actors.update(names)

    def stepped(self, name: str) -> None:
        self.actors.add(name)
        self.steps += 1

    def choose(self, n: int, kind: str) -> int:
        if kind == "fault":
            self.fault_decisions += 1
            self.most_kinds = max(self.most_kinds, n - 1)
        return 0
