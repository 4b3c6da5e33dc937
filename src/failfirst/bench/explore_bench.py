"""Explorer benchmark (``make bench-explore``): what the catalogue's proofs cost, how much
the reduction saves, and how fast each sampling strategy finds each failure mode.

- ``catalogue``: every failure mode's default proof (:func:`failfirst.proofs.prove.prove`:
  the guardrail-on exploration, the negative control, the guardrail-off exploration that
  strikes the points only the unguarded code has) timed in ONE process pinned to ONE
  core, its bounds and counts, and the total — the issue-21 budget is two minutes;
- ``reduction``: per failure mode at its default bounds, the schedules with the symmetry
  reduction alone and with sleep sets too, and their ratio;
- ``fm001``: schedules per second, the FM_001 proof at its default bounds (three faults)
  on every core (the design's target: under 3 s on this 2-core machine) and on one, and
  time to its first violation beside a Hypothesis state machine on the same processor;
- ``strategies``: with the guardrail off, how many runs seeded random sampling and PCT
  need to find each failure mode (median over seeds), and PCT's stated bound.

Writes ``_build/bench/explore.json``; the Performance chapter publishes it. Schedule
counts do not depend on the machine; seconds do (and on its load). ``--pin`` writes the
reviewed counts of ``tests/pinned_counts.json`` instead; ``--per-fm-only`` only the
reduction rows.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import JobQueue
from failfirst.proofs.explorer import BoundError, explore, with_bounds
from failfirst.proofs.prove import prove
from failfirst.sim import catalogue
from failfirst.store import Store
from failfirst.store.clock import SimClock

#: FM_001 (retry duplication): the fm001 rows and the Hypothesis state machine's processor.
SCENARIO = catalogue.load("FM_001")
RESULTS = Path("_build") / "bench" / "explore.json"
PINNED_PATH = os.path.join("tests", "pinned_counts.json")
REPEATS = 5
#: Schedules the symmetry-only side of a reduction row may run.
PER_FM_LIMIT = 300_000
#: Strategies: seeds per failure mode, and runs one search may take before giving up.
STRATEGY_SEEDS = 9
STRATEGY_CAP = 5_000
#: The violating share is taken over this many runs per strategy.
SHARE_RUNS = 200
#: The rarest "sometimes" state: seeds and the runs one search may take.
RARE_SEEDS = 5
RARE_CAP = 2_000
#: The catalogue's proofs together must fit in this on one core (issue 21).
CATALOGUE_BUDGET_S = 120.0
GUARD_OFF = Guardrails().without("idempotent_commit")
WORKERS = ("w1", "w2")


class RetryDuplicationMachine(RuleBasedStateMachine):
    """FM_001 as Hypothesis sees it: the real JobQueue on a real in-memory store; rules
    are the worker steps and the same faults (crash after claim or after the effect,
    a lost acknowledgement, a pause past the lease); the invariant is INV_001."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = SimClock()
        self.store = Store.memory(self.clock)
        self.queue = JobQueue(self.store, SCENARIO.handlers, guardrails=GUARD_OFF, config=SCENARIO.queue)
        for spec in SCENARIO.jobs:
            self.queue.enqueue(spec.type, spec.payload)
        self.held: dict[str, tuple] = {}  # worker -> (lease, stage)

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        if worker not in self.held:
            lease = self.queue.claim(worker)
            if lease is not None:
                self.held[worker] = (lease, "claimed")

    @rule(worker=st.sampled_from(WORKERS))
    def write_effect(self, worker: str) -> None:
        lease, stage = self.held.get(worker, (None, None))
        if stage == "claimed":
            self.queue.write_effects(lease, self.queue.run_handler(lease, _ctx(self, lease)), worker)
            self.held[worker] = (lease, "effect_written")

    @rule(worker=st.sampled_from(WORKERS))
    def complete(self, worker: str) -> None:
        lease, stage = self.held.get(worker, (None, None))
        if stage == "effect_written":
            self.queue.complete(lease, worker)
            del self.held[worker]

    @rule(worker=st.sampled_from(WORKERS))
    def crash(self, worker: str) -> None:
        self.held.pop(worker, None)  # the process dies: its memory of the lease is gone

    @precondition(lambda self: any(stage == "effect_written" for _, stage in self.held.values()))
    @rule(worker=st.sampled_from(WORKERS))
    def lose_ack(self, worker: str) -> None:
        lease, stage = self.held.get(worker, (None, None))
        if stage == "effect_written":
            del self.held[worker]  # it believes it is done; the queue never heard

    @rule()
    def pause_past_lease(self) -> None:
        self.clock.advance_to(self.clock.now_s() + SCENARIO.queue.lease_s)

    @rule()
    def reap(self) -> None:
        self.queue.reap()

    @invariant()
    def effect_at_most_once(self) -> None:
        seen = set()
        for job_id, part, _token, _amount in self.store.effects():
            assert (job_id, part) not in seen, f"INV_001: job {job_id} effect {part} applied twice"
            seen.add((job_id, part))


def _ctx(machine, lease):
    from failfirst.processor.queue import HandlerContext

    return HandlerContext(lease.job_id, lease.attempt, machine.clock.now_s, "bench")


def hypothesis_first_violation_s(seed: int) -> float:
    """Wall time until Hypothesis finds an INV_001 violation (generation only, no shrinking)."""
    config = settings(max_examples=100_000, phases=[Phase.generate], database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), stateful_step_count=50)
    RetryDuplicationMachine.TestCase.settings = config
    from hypothesis import seed as hseed

    started = time.perf_counter()  # real-time: a benchmark
    try:
        hseed(seed)(lambda: run_state_machine_as_test(RetryDuplicationMachine, settings=config))()
    except AssertionError:
        return time.perf_counter() - started  # real-time: a benchmark
    raise RuntimeError("Hypothesis found no violation")


# -- the catalogue's proofs on one core ----------------------------------------------------


def one_core() -> int | None:
    """Pin this process to one CPU (the lowest it may use); the CPU, or None where the
    platform cannot pin (the figures then say so)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def catalogue_rows(log: Callable[[str], None] = print,
                   scenarios: list[Any] | None = None) -> list[dict[str, Any]]:
    """Every failure mode's default proof, timed: ``prove()`` as the chapter runs it."""
    rows = []
    for scenario in scenarios or catalogue.all_scenarios():
        started = time.perf_counter()  # real-time: a benchmark
        proved = prove(scenario, show=False)
        total_s = time.perf_counter() - started  # real-time: a benchmark
        p = proved.proof
        row = {"fm": scenario.id, "bounds": p.bounds, "schedules": p.schedules,
               "sleep_blocked": p.sleep_blocked, "reached": p.reached,
               "proof_s": round(p.elapsed_s, 3), "control_s": round(proved.control.elapsed_s, 3),
               "unguarded_s": None if proved.unguarded is None else round(proved.unguarded.elapsed_s, 3),
               "total_s": round(total_s, 3), "sometimes": p.sometimes,
               "points": sum(len(kinds) for kinds in p.coverage.values())}
        rows.append(row)
        log(f"{row['fm']} at {p.bounds['max_faults']} faults: {row['schedules']} schedules "
            f"({row['sleep_blocked']} cut off), proof {row['proof_s']} s, all {row['total_s']} s")
    return rows


# -- the reduction per failure mode -------------------------------------------------------


def reduction_rows(limit: int = PER_FM_LIMIT, log: Callable[[str], None] = print,
                   scenarios: list[Any] | None = None) -> list[dict[str, Any]]:
    """Per failure mode at its default bounds (guardrail on): schedules with the symmetry
    reduction alone and with sleep sets too, and the ratio."""
    rows = []
    for scenario in scenarios or catalogue.all_scenarios():
        full = explore(scenario, guard=True, shrink_counterexample=False)
        try:
            plain = explore(scenario, guard=True, reduction="symmetry", limit=limit,
                            shrink_counterexample=False)
            symmetry, symmetry_s = plain.schedules, round(plain.elapsed_s, 3)
        except BoundError:
            symmetry, symmetry_s = None, None
        row = {"fm": scenario.id, "max_faults": scenario.faults.max_faults,
               "symmetry": symmetry, "symmetry_s": symmetry_s,
               "full": full.schedules, "full_s": round(full.elapsed_s, 3),
               "sleep_blocked": full.sleep_blocked,
               "ratio": None if symmetry is None else round(symmetry / full.schedules, 1)}
        rows.append(row)
        log(f"{row['fm']}: {symmetry if symmetry is not None else f'> {limit}'} schedules with "
            f"symmetry alone, {row['full']} with sleep sets ({row['ratio']}x)")
    return rows


# -- random sampling and PCT --------------------------------------------------------------


def runs_to_find(scenario: Any, mode: str, seed: int, cap: int = STRATEGY_CAP) -> int | None:
    """Runs of ``mode`` (random or pct) until the first violation, guardrail off; None
    when ``cap`` runs find none."""
    x = explore(scenario, guard=False, mode=mode, runs=cap, seed=seed, stop_at_first=True,
                shrink_counterexample=False)
    return x.schedules if x.violating else None


def runs_to_reach(scenario: Any, name: str, mode: str, seed: int, cap: int) -> int | None:
    """Runs of ``mode`` until one reaches the "sometimes" state ``name``, guardrail on;
    None when ``cap`` runs reach none."""
    x = explore(scenario, guard=True, mode=mode, runs=cap, seed=seed, shrink_counterexample=False,
                stop=lambda tally: tally.sometimes[name] > 0)
    return x.schedules if x.sometimes[name] else None


def _median_runs(found: list[int | None], cap: int) -> dict[str, Any]:
    return {"runs": found, "median": statistics.median(cap if n is None else n for n in found),
            "missed": sum(n is None for n in found)}


def strategy_rows(seeds: int = STRATEGY_SEEDS, cap: int = STRATEGY_CAP,
                  log: Callable[[str], None] = print,
                  scenarios: list[Any] | None = None) -> list[dict[str, Any]]:
    """Per failure mode: runs each strategy needed to find it with the guardrail off (per
    seed and the median, a miss counting as ``cap``); the share of violating runs among
    ``SHARE_RUNS``; the runs each needed to reach the scenario's rarest "sometimes" state
    with the guardrail on (the one the fewest exhaustive schedules reach: a deeper
    target than the violation); and PCT's bound for one fault at its default depth."""
    rows = []
    for scenario in scenarios or catalogue.all_scenarios():
        row: dict[str, Any] = {"fm": scenario.id, "seeds": seeds, "cap": cap}
        for mode in ("random", "pct"):
            row[mode] = _median_runs([runs_to_find(scenario, mode, seed, cap) for seed in range(seeds)], cap)
            share = explore(scenario, guard=False, mode=mode, runs=SHARE_RUNS, seed=0,
                            shrink_counterexample=False)
            row[mode]["violating_share"] = round(share.violating / share.schedules, 3)
        if scenario.sometimes:
            reached = explore(scenario, guard=True, shrink_counterexample=False).sometimes
            rarest = min(reached, key=lambda name: (reached[name], name))
            row["rare"] = {"state": rarest, "exhaustive": reached[rarest]}
            for mode in ("random", "pct"):
                row["rare"][mode] = _median_runs(
                    [runs_to_reach(scenario, rarest, mode, seed, RARE_CAP) for seed in range(RARE_SEEDS)],
                    RARE_CAP)
        guarantee = explore(scenario, guard=False, mode="pct", runs=1, shrink_counterexample=False).pct
        row["pct_bound"] = {k: guarantee[k] for k in ("depth", "actors", "steps", "fault_decisions",
                                                      "fault_kinds", "max_faults")}
        one_fault = guarantee["by_faults"][min(1, scenario.faults.max_faults)]
        row["pct_bound"]["p_one_fault"] = one_fault["p_per_run"]
        rows.append(row)
        log(f"{scenario.id}: random {row['random']['median']} runs, pct {row['pct']['median']} "
            f"runs (median of {seeds}; missed {row['random']['missed']} / {row['pct']['missed']})"
            + (f"; rarest state {row['rare']['state']!r}: random {row['rare']['random']['median']}, "
               f"pct {row['rare']['pct']['median']}" if "rare" in row else ""))
    return rows


# -- FM_001 ----------------------------------------------------------------------------------


def fm001(repeats: int = REPEATS, cores: int | None = None) -> dict[str, Any]:
    cores = cores or os.cpu_count() or 1
    proof, proof_one, exhaustive_rate, random_rate, ours_first, theirs_first = [], [], [], [], [], []
    p = pp = None
    for i in range(repeats):
        # The per-core rate: schedules run per second, on the tree without sleep sets.
        rate = explore(with_bounds(SCENARIO, 2), guard=True, reduction="symmetry",
                       shrink_counterexample=False)
        exhaustive_rate.append(rate.schedules / rate.elapsed_s)
        p = explore(SCENARIO, guard=True, shrink_counterexample=False)  # one process
        assert p.exhaustive and p.violating == 0 and p.reached > 0
        proof_one.append(p.elapsed_s)
        pp = explore(SCENARIO, guard=True, workers=cores, shrink_counterexample=False)
        assert (pp.schedules, pp.violating) == (p.schedules, p.violating)
        proof.append(pp.elapsed_s)
        r = explore(SCENARIO, guard=True, mode="random", runs=2000, seed=i, shrink_counterexample=False)
        random_rate.append(r.schedules / r.elapsed_s)
        first = explore(SCENARIO, guard=False, stop_at_first=True, shrink_counterexample=False)
        ours_first.append(first.first_violation_s)
        theirs_first.append(hypothesis_first_violation_s(seed=i))
    assert p is not None
    med = statistics.median
    out = {
        "schedules_per_s": round(med(exhaustive_rate)),
        "random_schedules_per_s": round(med(random_rate)),
        "max_faults": SCENARIO.faults.max_faults,
        "proof_s": round(med(proof), 3),
        "proof_one_process_s": round(med(proof_one), 3),
        "cores": cores,
        "proof_schedules": p.schedules,
        "failfirst_first_violation_s": round(med(ours_first), 5),
        "hypothesis_first_violation_s": round(med(theirs_first), 5),
        "repeats": repeats,
    }
    out["first_violation_ratio"] = round(out["hypothesis_first_violation_s"]
                                         / out["failfirst_first_violation_s"], 1)
    return out


def load_results(path: Path = RESULTS) -> dict[str, Any] | None:
    """What ``make bench-explore`` wrote, or None when it has not run."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _save(result: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main() -> int:
    if "--pin" in sys.argv:
        return write_pinned()
    if "--per-fm-only" in sys.argv:
        result = load_results() or {}
        result["reduction"] = reduction_rows()
        _save(result)
        return 0
    result: dict[str, Any] = {"machine_cores": os.cpu_count()}
    # FM_001 first, on every core; then everything else pinned to one.
    result["fm001"] = fm001()
    f = result["fm001"]
    print(f"FM_001 at {f['max_faults']} faults: {f['proof_schedules']} schedules proven in "
          f"{f['proof_s']} s on {f['cores']} cores ({f['proof_one_process_s']} s in one process; "
          f"target < 3 s); {f['schedules_per_s']} schedules/s per core; first violation "
          f"{f['failfirst_first_violation_s']} s, Hypothesis {f['hypothesis_first_violation_s']} s")
    result["one_core"] = one_core()
    rows = catalogue_rows()
    total_s = round(sum(r["total_s"] for r in rows), 3)
    result["catalogue"] = {"rows": rows, "total_s": total_s, "budget_s": CATALOGUE_BUDGET_S}
    print(f"the catalogue's default proofs: {total_s} s on one core (budget {CATALOGUE_BUDGET_S:g} s)")
    _save(result)
    result["reduction"] = reduction_rows()
    _save(result)
    result["strategies"] = strategy_rows()
    _save(result)
    return 0 if total_s < CATALOGUE_BUDGET_S else 1


def pinned_counts() -> dict[str, dict]:
    """Every failure mode's default proof (guardrail on, every reduction): its bounds, the
    schedules it explores and the paths the sleep sets cut off. Machine-independent."""
    out = {}
    for scenario in catalogue.all_scenarios():
        x = explore(scenario, guard=True, shrink_counterexample=False)
        out[scenario.id] = {"bounds": x.bounds, "schedules": x.schedules,
                            "sleep_blocked": x.sleep_blocked}
    return out


def write_pinned(path: str = PINNED_PATH) -> int:
    """``--pin``: write the reviewed counts the bundles' proof tests compare against."""
    counts = pinned_counts()
    with open(path, "w") as f:
        json.dump(counts, f, indent=2, sort_keys=True)
        f.write("\n")
    for fm, row in counts.items():
        print(f"{fm}: {row['schedules']} schedules, {row['sleep_blocked']} cut off, bounds {row['bounds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
