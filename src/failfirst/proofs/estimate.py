"""How big is a choice tree, before and while exploring it?

**Before** (Knuth, "Estimating the efficiency of backtrack programs", Math. Comp.
1975): walk a random path from the root, choosing uniformly at every decision, and
multiply the numbers of options met; the product is an unbiased estimate of the
number of leaves (complete schedules). The mean over a few seeded paths is the
estimate ``explore`` checks before it runs (issue 23): past the limit it refuses,
with the estimate, rather than run for hours. It estimates the tree the search walks
before sleep sets (with the symmetry reduction when it is on): sleep sets only cut
it, so the estimate is an upper bound of the work for ``--reduction full``.

**While** exploring depth-first: with the path's decisions ``(v_i, n_i)`` and the
options asleep at each, the fraction of the tree already behind the search, taking
every subtree of a decision as the same size, is
``sum_i done_i / open_i * prod_{j<i} 1 / open_j`` (``open``: options not asleep,
``done``: those before ``v_i``), plus the path's own share ``prod_i 1 / open_i``.
Schedules run so far divided by it estimates the whole: the progress bar's total.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failfirst.proofs.run import RunResult
from failfirst.sim.choices import ChoiceSource

#: Random paths behind one estimate: deterministic (seeded), about a second at most.
PROBES = 64


class _UniformPath:
    """Uniform choices at every decision (faults included), multiplying the options."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.leaves = 1

    def choose(self, n: int, kind: str) -> int:
        self.leaves *= n
        return self._rng.randrange(n)


@dataclass(frozen=True)
class TreeEstimate:
    #: Estimated complete schedules (mean over the probes) and the spread of the probes.
    schedules: float
    low: float
    high: float
    probes: int
    #: Mean seconds per run on this machine, measured on the probes.
    seconds_per_run: float
    #: The standard error of the mean. Unbalanced trees give heavy-tailed probes: the
    #: mean then tends to fall short, and ``upper`` (three standard errors above) says
    #: how far it may.
    stderr: float = 0.0

    @property
    def upper(self) -> float:
        return self.schedules + 3 * self.stderr

    @property
    def seconds(self) -> float:
        return self.schedules * self.seconds_per_run

    def to_json(self) -> dict[str, Any]:
        return {"schedules": round(self.schedules), "upper": round(self.upper), "low": round(self.low),
                "high": round(self.high), "probes": self.probes, "seconds": round(self.seconds, 1)}


def estimate_tree(run: Callable[[ChoiceSource], RunResult], probes: int = PROBES,
                  seed: int = 0) -> TreeEstimate:
    """Knuth's estimate of the number of complete schedules of ``run``'s choice tree."""
    assert probes >= 1
    sizes = []
    started = time.perf_counter()  # real-time: seconds per run is a measurement
    for i in range(probes):
        path = _UniformPath(seed * 7_919 + i)
        run(path)
        sizes.append(path.leaves)
    elapsed_s = time.perf_counter() - started  # real-time: measurement
    spread = statistics.stdev(sizes) / probes ** 0.5 if probes > 1 else 0.0
    return TreeEstimate(schedules=statistics.fmean(sizes), low=min(sizes), high=max(sizes),
                        probes=probes, seconds_per_run=elapsed_s / probes, stderr=spread)


def fraction_done(path: list[tuple[int, int, frozenset[int]]]) -> float:
    """The fraction of the tree behind a depth-first search that has just run the path
    ``path`` — (value, options, options asleep) per decision — that path included (see
    the module docstring): 1 after the last path."""
    done, weight = 0.0, 1.0
    for value, options, asleep in path:
        open_options = [v for v in range(options) if v not in asleep]
        if not open_options:
            break
        before = sum(1 for v in open_options if v < value)
        done += weight * before / len(open_options)
        weight /= len(open_options)
    return done + weight


def projected_total(schedules: int, fraction: float) -> int | None:
    """The tree's size projected from ``schedules`` run and the ``fraction`` behind them."""
    if fraction <= 0 or schedules <= 0:
        return None
    return max(schedules, round(schedules / fraction))


__all__ = ["PROBES", "TreeEstimate", "estimate_tree", "fraction_done", "projected_total"]
