"""The curated planted bugs of ``make mutate``: one-line semantic changes to the
processor, the store, the transitions, the checkers, the explorer, the retry budget
and the batch path. Each names the file, the exact text it replaces (which must occur
exactly once), the replacement, and one line of what it breaks. A mutation that the
fast tests do not catch is a test that is missing.

Left out on purpose: the symmetry reduction keying a crashed idle worker like a fresh
one (``("fresh worker", self.crashed, ...)`` -> ``("fresh worker", False, ...)``). It
is equivalent at every bound the suite explores: a restarting worker and a fresh one
are never ready together, so nothing is pruned that was not pruned before;
``tests/test_symmetry_crashed.py``
shows it.
"""

from __future__ import annotations

from typing import NamedTuple


class Mutation(NamedTuple):
    path: str
    old: str
    new: str
    breaks: str


P, S, T, C = ("src/failfirst/processor/queue.py", "src/failfirst/store/sqlite.py",
              "src/failfirst/processor/transitions.py", "src/failfirst/proofs/checkers.py")

MUTATIONS: tuple[Mutation, ...] = (
    # -- the processor: fencing, once-only effects, attempts, dead letters, leases
    Mutation(P, "token = lease.token if self.guard.fencing else None", "token = None",
             "heartbeat unfenced: a zombie's heartbeat pushes the new holder's lease"),
    Mutation(P, 'fencing=self.guard.fencing, columns=lease_cols, reason=reason,',
             'fencing=False, columns=lease_cols, reason=reason,',
             "dead unfenced: a zombie's handled failure dead-letters the new holder's job"),
    Mutation(P, 'fencing=self.guard.fencing, columns={**lease_cols, "run_at_s": now_s + delay_s},',
             'fencing=False, columns={**lease_cols, "run_at_s": now_s + delay_s},',
             "retry unfenced: a zombie's handled failure sends the new holder's job back"),
    Mutation(P, "self._write_effects(lease, effects, worker, once=True,",
             "self._write_effects(lease, effects, worker, once=False,",
             "completion without its once-only guard: an effect already present is doubled"),
    Mutation(P, "self.store.insert_dead_letter(job.id, reason, now_s)",
             'self.store.insert_dead_letter(job.id, job.last_error or "", now_s)',
             "a dead letter records the previous attempt's error, not why it was dead-lettered"),
    Mutation(P, "attempts = job.attempts + 1 if self.guard.count_attempts_at_claim else job.attempts",
             "attempts = job.attempts",
             "attempts not counted at claim: a poison job that crashes its worker is retried forever"),
    Mutation(P, "expires_s = self.store.clock.now_s() + self.config.lease_s",
             "expires_s = self.store.clock.now_s() + self.config.heartbeat_s",
             "a heartbeat extends by the heartbeat interval: leases of live workers expire"),
    Mutation(P, "spent = self.guard.bounded_attempts and attempts >= max_attempts",
             "spent = self.guard.bounded_attempts and attempts > max_attempts",
             "the reaper grants one attempt more than max_attempts"),
    # -- the store
    Mutation(S, "new_token = token + int(bump_token) if done else None",
             "new_token = token + int(bump_token)",
             "a refused compare-and-set is reported as done: stale writes pass silently"),
    Mutation(S, "WHERE state = 'leased' AND lease_expires_s <= ? ORDER BY lease_expires_s, id LIMIT ?",
             "WHERE state = 'leased' ORDER BY lease_expires_s, id LIMIT ?",
             "the reaper takes back live leases, not only expired ones"),
    # -- the transitions
    Mutation(T, 'bump_token=event == "claim",', "bump_token=False,",
             "a claim issues no new fencing token: a zombie and the new holder share one"),
    Mutation(T, "check_token = None if event in LEASE_HOLDER_EVENTS and not fencing else token",
             "check_token = None",
             "no transition is fenced: every stale write is accepted"),
    # -- the checkers (the judge)
    Mutation(C, 'if e["token"] != token[job] or state[job] != "leased":',
             'if state[job] != "leased":',
             "INV_003 ignores the token of effect events"),
    Mutation(C, 'if e["token"] <= token[job]:', 'if e["token"] < token[job]:',
             "INV_003 accepts a claim that reuses the current token"),
    Mutation(C, "if len(claims[job]) == max_attempts.get(job, 0) + 1:",
             "if len(claims[job]) == max_attempts.get(job, 0) + 2:",
             "INV_005's attempt bound is off by one"),
    Mutation(C, 'if (state == "dead") != (job_id in dead_letters):',
             'if state == "dead" and job_id not in dead_letters:',
             "INV_007 checks one direction only: a dead letter without a dead job passes"),
    Mutation(C, "if n > 1 or n < 0:", "if n > 1:",
             "INV_006 misses a repair that removes a part more often than it was applied"),
    Mutation(C, 'claim["seq"] < seq < end["seq"] for seq in faults[claim["actor"]]',
             'seq < end["seq"] for seq in faults[claim["actor"]]',
             "INV_008 excuses an expiry by a fault that came before the attempt began"),
    # -- the retry budget and the batch path
    Mutation("src/failfirst/sim/services.py", "if self.tokens < 1:", "if self.tokens <= 0:",
             "the retry budget sells a retry for a fractional token"),
    Mutation(P, "(n, worker, now_s + lease_s)", "(n, worker, lease_s)",
             "a batch claim's lease deadline omits the current time: every lease expires at once"),
    # -- the explorer
    Mutation("src/failfirst/sim/scheduler.py", "if self.is_worker and not self.holding:",
             "if self.is_worker:",
             "the symmetry reduction treats a worker holding a lease as interchangeable: unsound"),
    Mutation("src/failfirst/proofs/explorer.py", "self.reached += result.reached", "self.reached += 0",
             "proofs report that no run reached the fault: a vacuous proof looks fine"),
)
