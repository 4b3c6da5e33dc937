"""Explorer benchmark: schedules per second on FM_001, the FM_001 proof time, and
time to the first FM_001 violation for our explorer versus a Hypothesis
RuleBasedStateMachine driving the same processor API with the same fault points;
and per failure mode (``per_fm``), the guardrail-on proof's schedules and time with
the symmetry reduction alone and with sleep sets added (``full``), at the default
fault bound and at one more fault.

Run with ``make bench-explore``; writes ``_build/bench/explore.json``. Figures are
wall-clock measurements of this machine: a benchmark, never a test.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable

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
from failfirst.sim import catalogue
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

REPEATS = 5
#: The per-failure-mode rows: schedules an exploration without sleep sets may run.
PER_FM_LIMIT = 20_000
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

    started = time.perf_counter()
    try:
        hseed(seed)(lambda: run_state_machine_as_test(RetryDuplicationMachine, settings=config))()
    except AssertionError:
        return time.perf_counter() - started
    raise RuntimeError("Hypothesis found no violation")


def _per_fm_row(task: tuple[str, int, str]) -> dict:
    fm, max_faults, reduction = task
    bounded = with_bounds(catalogue.load(fm), max_faults)
    try:
        x = explore(bounded, guard=True, reduction=reduction, limit=PER_FM_LIMIT,
                    shrink_counterexample=False)
        row = {"schedules": x.schedules, "seconds": round(x.elapsed_s, 3),
               "violating": x.violating, "reached": x.reached}
    except BoundError:
        row = {"schedules": None, "seconds": None, "violating": None, "reached": None}
    return {"fm": fm, "max_faults": max_faults, "reduction": reduction, **row}


def per_fm_rows(on_row: Callable[[list[dict]], None] = lambda rows: None, jobs: int = 1) -> list[dict]:
    """Each failure mode's proof (guardrail on, one process each) at its default fault
    bound and one more, with the symmetry reduction alone and with sleep sets (``full``).
    Schedule counts do not depend on the machine; seconds do (and on its load, and on
    ``jobs`` rows measured side by side). ``on_row`` sees the rows so far after each one
    (a long run keeps what it measured)."""
    tasks = [(scenario.id, max_faults, reduction) for scenario in catalogue.all_scenarios()
             for max_faults in (scenario.faults.max_faults, scenario.faults.max_faults + 1)
             for reduction in ("symmetry", "full")]
    rows: list[dict] = []
    if jobs > 1:
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(jobs)
        results = pool.imap(_per_fm_row, tasks)
    else:
        pool, results = None, map(_per_fm_row, tasks)
    try:
        for row in results:
            rows.append(row)
            on_row(rows)
            print(f"{row['fm']} max_faults={row['max_faults']} {row['reduction']:>8}: "
                  f"{row['schedules'] if row['schedules'] is not None else f'> {PER_FM_LIMIT}'} "
                  f"schedules, {row['seconds']} s", flush=True)
    finally:
        if pool is not None:
            pool.close()
    return rows


def reduction_ratios(rows: list[dict]) -> dict[str, float | None]:
    """Schedules without sleep sets / schedules with them, per (fm, max_faults)."""
    by = {(r["fm"], r["max_faults"], r["reduction"]): r["schedules"] for r in rows}
    out = {}
    for fm, max_faults, reduction in by:
        if reduction == "full":
            plain, full = by.get((fm, max_faults, "symmetry")), by[(fm, max_faults, reduction)]
            out[f"{fm}@{max_faults}"] = round(plain / full, 1) if plain and full else None
    return out


PINNED_PATH = os.path.join("tests", "pinned_counts.json")


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


def main() -> int:
    if "--pin" in sys.argv:
        return write_pinned()
    if "--per-fm-only" in sys.argv:
        return write_per_fm()
    out_dir = os.path.join("_build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    cores = os.cpu_count() or 1
    proof, proof_one, exhaustive_rate, random_rate, ours_first, theirs_first = [], [], [], [], [], []
    for i in range(REPEATS):
        # The per-core rate: schedules run per second, on the tree without sleep sets.
        rate = explore(SCENARIO, guard=True, reduction="symmetry")
        exhaustive_rate.append(rate.schedules / rate.elapsed_s)
        p = explore(SCENARIO, guard=True)  # the proof in one process (full reduction)
        assert p.exhaustive and p.violating == 0 and p.reached > 0
        proof_one.append(p.elapsed_s)
        pp = explore(SCENARIO, guard=True, workers=cores)  # as `failfirst explore` runs it
        assert (pp.schedules, pp.violating) == (p.schedules, p.violating)
        proof.append(pp.elapsed_s)
        r = explore(SCENARIO, guard=True, mode="random", runs=2000, seed=i)
        random_rate.append(r.schedules / r.elapsed_s)
        first = explore(SCENARIO, guard=False, stop_at_first=True, shrink_counterexample=False)
        ours_first.append(first.first_violation_s)
        theirs_first.append(hypothesis_first_violation_s(seed=i))
    med = statistics.median
    result = {
        "schedules_per_s": round(med(exhaustive_rate)),
        "random_schedules_per_s": round(med(random_rate)),
        "fm001_proof_s": round(med(proof), 3),
        "fm001_proof_one_process_s": round(med(proof_one), 3),
        "cores": cores,
        "fm001_proof_schedules": p.schedules,
        "failfirst_first_violation_s": round(med(ours_first), 5),
        "hypothesis_first_violation_s": round(med(theirs_first), 5),
        "repeats": REPEATS,
    }
    result["first_violation_ratio"] = round(result["hypothesis_first_violation_s"]
                                            / result["failfirst_first_violation_s"], 1)
    three = explore(with_bounds(SCENARIO, 3), guard=True, workers=cores, shrink_counterexample=False)
    assert three.exhaustive and three.violating == 0 and three.reached > 0
    result["fm001_3_faults_proof_s"] = round(three.elapsed_s, 3)
    result["fm001_3_faults_schedules"] = three.schedules
    result["per_fm"] = per_fm_rows()
    result["reduction_ratio"] = reduction_ratios(result["per_fm"])
    with open(os.path.join(out_dir, "explore.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(f"FM_001 exhaustive: {result['schedules_per_s']} schedules/s (target >= 3000 per core); "
          f"random: {result['random_schedules_per_s']} schedules/s")
    print(f"FM_001 exhaustive proof at default bounds: {result['fm001_proof_s']} s for "
          f"{result['fm001_proof_schedules']} schedules on {cores} cores "
          f"({result['fm001_proof_one_process_s']} s in one process; target < 2 s)")
    print(f"time to first FM_001 violation: failfirst {result['failfirst_first_violation_s']} s, "
          f"Hypothesis RuleBasedStateMachine {result['hypothesis_first_violation_s']} s "
          f"(ratio {result['first_violation_ratio']}x), median of {REPEATS}")
    print(f"FM_001 at 3 faults: {result['fm001_3_faults_schedules']} schedules proven in "
          f"{result['fm001_3_faults_proof_s']} s on {cores} cores (target < 3 s)")
    print("reduction ratio (schedules, symmetry alone / with sleep sets):",
          json.dumps(result["reduction_ratio"]))
    return 0


def write_per_fm() -> int:
    """Only the per-failure-mode rows, merged into an existing explore.json."""
    path = os.path.join("_build", "bench", "explore.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    result = {}
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
    def save(rows: list[dict]) -> None:
        result["per_fm"] = rows
        result["reduction_ratio"] = reduction_ratios(rows)
        with open(path, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)

    jobs = int(os.environ.get("BENCH_JOBS", "1"))  # rows side by side (counts unchanged)
    save(per_fm_rows(on_row=save, jobs=jobs))
    print("reduction ratio (schedules, symmetry alone / with sleep sets):",
          json.dumps(result["reduction_ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
