"""The curated planted bugs of ``make mutate``: one-line semantic changes to the
processor, the store, the transitions, the checkers, the explorer, the retry budget
and the batch path; and (issue 26) the edge cases of both stores, refinement,
recovery, the services' recovery and the differential proof's comparison. Each names
the file, the exact text it replaces (which must occur exactly once), the replacement,
one line of what it breaks and, optionally, the tests likeliest to catch it (run first;
the other fast tests follow). A mutation that the fast tests do not catch is a test
that is missing.

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
    #: The tests likeliest to catch it, run before the other fast tests.
    tests: tuple[str, ...] = ()


P, S, T, C = ("src/failfirst/processor/queue.py", "src/failfirst/store/sqlite.py",
              "src/failfirst/processor/transitions.py", "src/failfirst/proofs/checkers.py")
R = "src/failfirst/sim/reduction.py"

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
    Mutation(C, 'if e["token"] != token[job] + 1:', 'if e["token"] > token[job] + 1:',
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
    Mutation("src/failfirst/proofs/tally.py", "self.reached += result.reached", "self.reached += 0",
             "proofs report that no run reached the fault: a vacuous proof looks fine"),

)

# -- issue 26: each class of thin tests, a planted bug in each module --------------------------

CONFORMANCE = ("tests/test_store_conformance.py",)
SQ, PG = "src/failfirst/store/sqlite.py", "src/failfirst/store/postgresql.py"
REF, REC = "src/failfirst/proofs/refinement.py", "src/failfirst/processor/recovery.py"
SREC, DIFF = "src/failfirst/sim/service_recovery.py", "src/failfirst/proofs/differential.py"
RECOVERY_TESTS = ("tests/test_recovery_branches.py", "tests/test_recovery.py")

MUTATIONS += (
    # -- the SQLite store's edge cases
    Mutation(SQ, "AND (lease_expires_s IS NULL OR lease_expires_s > ?) ORDER BY id LIMIT ?",
             "AND lease_expires_s > ? ORDER BY id LIMIT ?",
             "SQLite: a lease written without a deadline is never given one by recovery", CONFORMANCE),
    Mutation(SQ, '"ORDER BY lease_expires_s DESC, id DESC LIMIT 1"', '"ORDER BY lease_expires_s, id LIMIT 1"',
             "SQLite: a restarted worker finds its oldest lease, not its newest", CONFORMANCE),
    Mutation(SQ, 'self.version += 1\n        if token is None:\n            cur = self._write(\n'
             '                "UPDATE jobs SET lease_expires_s',
             'if token is None:\n            cur = self._write(\n'
             '                "UPDATE jobs SET lease_expires_s',
             "SQLite: a heartbeat leaves the memoised lease deadline stale (the reaper wakes too early)",
             CONFORMANCE),
    Mutation(SQ, "self.version += 1  # what was read inside the transaction is gone",
             "pass  # what was read inside the transaction is gone",
             "SQLite: a rollback leaves the wake-up times of the writes it undid memoised", CONFORMANCE),
    Mutation(SQ, 'AND outcome IS NULL",\n            (outcome, job_id, token),',
             '",\n            (outcome, job_id, token),',
             "SQLite: ending an attempt again overwrites its first outcome", CONFORMANCE),
    Mutation(SQ, '"DELETE FROM effects WHERE job_id = ? AND part = ? AND token = ?", (job_id, part, token)',
             '"DELETE FROM effects WHERE job_id = ? AND part = ?", (job_id, part)',
             "SQLite: removing one lease's copy of a part removes every lease's", CONFORMANCE),
    Mutation(SQ, '_TABLES = ("events", "outbox", "dead_letters", "effects", "attempts", "jobs")',
             '_TABLES = ("events", "dead_letters", "effects", "attempts", "jobs")',
             "SQLite: reset leaves the previous run's outbox rows", CONFORMANCE),
    Mutation(SQ, '"UPDATE outbox SET published_s = ? WHERE message_id = ? AND published_s IS NULL"',
             '"UPDATE outbox SET published_s = ? WHERE message_id = ?"',
             "SQLite: a message marked published twice is reported as newly marked", CONFORMANCE),
    Mutation(SQ, "return run_at_s is not None and run_at_s <= now_s",
             "return run_at_s is not None and run_at_s < now_s",
             "SQLite in memory: a job due exactly now is not claimable", CONFORMANCE),
    # -- the PostgreSQL store's edge cases (make mutate needs the server for these)
    Mutation(PG, '"AND (lease_expires_s IS NULL OR lease_expires_s > %s) ORDER BY id LIMIT %s"',
             '"AND lease_expires_s > %s ORDER BY id LIMIT %s"',
             "PostgreSQL: a lease written without a deadline is never given one by recovery", CONFORMANCE),
    Mutation(PG, "ORDER BY lease_expires_s DESC NULLS LAST, id DESC LIMIT 1",
             "ORDER BY lease_expires_s DESC NULLS FIRST, id DESC LIMIT 1",
             "PostgreSQL: a lease without a deadline is taken for the owner's newest", CONFORMANCE),
    Mutation(PG, '"WHERE NOT EXISTS (SELECT 1 FROM effects WHERE job_id = %s AND part = %s) "',
             '"WHERE NOT EXISTS (SELECT 1 FROM effects WHERE job_id = %s AND part = %s AND keyed) "',
             "PostgreSQL: a part already written unkeyed by another path is written again keyed",
             CONFORMANCE),
    Mutation(PG, "pg_get_serial_sequence('{t}', '{c}'), 1, false)",
             "pg_get_serial_sequence('{t}', '{c}'), 1, true)",
             "PostgreSQL: after a reset, job ids and seq start at 2", CONFORMANCE),
    Mutation(PG, "        return self._cur.rowcount\n", "        return len(rows)\n",
             "PostgreSQL: a batched write counts every row as written (a batch commit misses a part "
             "already there)", CONFORMANCE),
    Mutation(PG, '"AND lease_expires_s <= %s ORDER BY lease_expires_s, id LIMIT %s" + lock',
             '"AND lease_expires_s < %s ORDER BY lease_expires_s, id LIMIT %s" + lock',
             "PostgreSQL: a lease that ends exactly now is not yet expired", CONFORMANCE),
    # -- refinement: the job views and the oracle's bound
    Mutation(REF, 'attempts[job] = e["attempt"]', "attempts[job] += 1",
             "a view counts claims instead of reading the attempt the claim recorded",
             ("tests/test_refinement.py",)),
    Mutation(REF, 'elif kind == "redrive":\n                attempts[job] = 0',
             'elif kind == "redrive":\n                pass',
             "a view keeps the spent attempts across a redrive", ("tests/test_refinement.py",)),
    Mutation(REF, "effects[job] -= 1", "effects[job] -= 0",
             "a view ignores repairs: a part recovery removed still counts", ("tests/test_refinement.py",)),
    Mutation(REF, "        else:\n            continue\n        yield",
             "        else:\n            pass\n        yield",
             "a view is yielded for events that change no job (heartbeats, refusals, calls)",
             ("tests/test_refinement.py",)),
    Mutation(REF, 'if e["actor"] == self.actor and view not in oracle:', "if view not in oracle:",
             "every actor's views are judged, not only the recovery's", ("tests/test_refinement.py",)),
    Mutation(REF, 'bound = start.get("max_faults")', "bound = None",
             "a run at another fault bound is judged against the scenario's default oracle",
             ("tests/test_refinement.py",)),
    Mutation(REF, "normal = with_bounds(self.normal, bound)", "normal = self.normal",
             "the oracle is enumerated at the default bound whatever bound it is asked for",
             ("tests/test_refinement.py",)),
    # -- recovery: batches, which copy is kept, reconciliation, redrive, the sweep
    Mutation(REC, "for _ in range(1 + len(queue.store.jobs()) // queue.config.reap_batch):",
             "for _ in range(1):", "recovery reaps one batch of expired leases only", RECOVERY_TESTS),
    Mutation(REC, "            if len(found) < batch:\n", "            if True:\n",
             "recovery gives one batch of endless leases a deadline, the rest none", RECOVERY_TESTS),
    Mutation(REC, "bounded = bound_leases(queue, actor) if queue.guard.lease_expiry else ()",
             "bounded = bound_leases(queue, actor)",
             "recovery bounds leases even where lease expiry is switched off", RECOVERY_TESTS),
    Mutation(REC, 'if job.state == "pending" and kept is not None:', "if kept is not None:",
             "reconciliation tries to complete a dead job whose effect is whole", RECOVERY_TESTS),
    Mutation(REC, "keep = next((t for t, _ in copies if t in succeeded), copies[0][0])",
             "keep = next((t for t, _ in copies if t in succeeded), copies[-1][0])",
             "with no attempt succeeded, repair keeps the last writer's copy, not the first's",
             RECOVERY_TESTS),
    Mutation(REC, 'if whole or state == "succeeded":', "if whole:",
             "repair rolls back the parts of a succeeded job, leaving it with no effect", RECOVERY_TESTS),
    Mutation(REC, "for _t, amount in [c for c in drop if c[0] == token][:count]:",
             "for _t, amount in [c for c in drop if c[0] == token][:1]:",
             "copies of one token removed together are reported as one", RECOVERY_TESTS),
    Mutation(REC, 'if job.state == "leased":\n                    continue',
             'if job.state == "leased":\n                    pass',
             "reconciliation repairs the effect of a job whose holder is still at work", RECOVERY_TESTS),
    Mutation(REC, "delay_s=round((i // per_window) * window_s, 6)",
             "delay_s=round((i % per_window) * window_s, 6)",
             "the spread redrive cycles within one window instead of moving to the next", RECOVERY_TESTS),
    Mutation(REC, "for _ in range(1 + len(queue.store.outbox())):", "for _ in range(1):",
             "the outbox sweep publishes one unmarked message only", RECOVERY_TESTS),
    # -- the services' recovery
    Mutation(SREC, "for extra in live[1:]:", "for extra in live[:-1]:",
             "reconciliation keeps a job's newest charge and refunds the first",
             ("tests/test_service_recovery.py",)),
    Mutation(SREC, 'if live and job.state != "succeeded":', "if live:",
             "reconciliation completes a succeeded job again", ("tests/test_service_recovery.py",)),
    Mutation(SREC, "queue.store.delete_dead_letter(job.id)", "pass",
             "a dead job that reconciliation completes keeps its dead letter",
             ("tests/test_service_recovery.py",)),
    Mutation(SREC, 'if job.state == "leased":\n            continue',
             'if job.state == "leased":\n            pass',
             "reconciliation refunds a leased job's charges while its holder is at work",
             ("tests/test_service_recovery.py",)),
    Mutation(SREC, 'if best is None or e["token"] >= best["token"]:',
             'if best is None or e["token"] > best["token"]:',
             "a tie between two writes of one lease is restored to the earlier",
             ("tests/test_service_recovery.py",)),
    Mutation(SREC, 'if e["kind"] == "write" and e["actor"] == resource.name:', 'if e["kind"] == "write":',
             "another resource's writes decide this resource's newest value",
             ("tests/test_service_recovery.py",)),
    # -- the differential proof's comparison
    Mutation(DIFF, "if (found.digest, found.invariants_violated, found.reached) != (",
             "if (replayed.digest, found.invariants_violated, found.reached) != (",
             "schedules are compared without their history digest", ("tests/test_differential_control.py",)),
    Mutation(DIFF, "if final_state(found.store) != final_state(replayed.store):",
             "if final_state(found.store) != final_state(found.store):",
             "the stores' final rows are not compared", ("tests/test_differential_control.py",)),
    Mutation(DIFF, "if ours != theirs:", "if ours[1:] != theirs[1:]:",
             "the schedule counts are not compared: a store whose search prunes more passes",
             ("tests/test_differential_control.py",)),
    Mutation(DIFF, '"attempts": store.attempts(),', "",
             "the attempt log is left out of the final state", ("tests/test_differential_control.py",)),
    Mutation(DIFF, '"unpublished": store.unpublished_outbox(len(outbox) + 1),', "",
             "the bodies of unpublished outbox rows are left out of the final state",
             ("tests/test_differential_control.py",)),
)

# -- issue 26: the reduction's dependency relation: each a footprint or a relation that is
# wrong, harmless at some bounds and unsound at others
REDUCTION_TESTS = ("tests/test_reduction.py",)

MUTATIONS += (
    Mutation(R, "            rec.writes.add(lease)\n", "",
             "a lease change is not recorded: the reaper's read of every lease misses it",
             REDUCTION_TESTS),
    Mutation(R, "            self.recording.reads.add((\"pend\", ANY))\n            if job is not None:",
             "            if job is not None:",
             "a claim no longer reads the whole queue: two claims look independent", REDUCTION_TESTS),
    Mutation(R, "            or _meets(b.writes, a.reads | a.adds)\n", "\n",
             "dependent() is not symmetric: a write of the second step is ignored", REDUCTION_TESTS),
    Mutation(R, "and run_at_s > self.clock.now_s()):", "and run_at_s >= 0):",
             "every retry counts as pending later, even one a claim at this instant can find",
             REDUCTION_TESTS),
    Mutation(R, "return all(a == b or a == ANY or b == ANY for a, b in zip(x[1:], y[1:], strict=True))",
             "return all(a == b for a, b in zip(x[1:], y[1:], strict=True))",
             "a wildcard key (every job) no longer meets a particular job", REDUCTION_TESTS),
    Mutation(R, '            self.recording.writes.add(("log", job))\n', "            pass\n",
             "an event no longer writes its job's log: two steps about one job look independent",
             REDUCTION_TESTS),
    Mutation("src/failfirst/sim/services.py",
             "        row = (\"resource\", self.name, key)\n"
             "        touch(self.store, reads=(row,), writes=(row,))\n        newest",
             "        newest",
             "a fenced downstream write records no footprint: a zombie's write and the new "
             "holder's commute", REDUCTION_TESTS),
    Mutation("src/failfirst/sim/scheduler.py",
             'self._opaque_services = any(not getattr(service, "records_footprints", False)',
             'self._opaque_services = any(not getattr(service, "records_footprints", True)',
             "a service that records nothing is trusted: a reader's world looks independent",
             REDUCTION_TESTS),
)

# -- issue 26: the peers' judge and ledger (combinations of kills, restarts and reports),
# and the real-run driver's promise of planned kills
JUDGE, LEDGER = "src/failfirst/peers/judge.py", "src/failfirst/peers/ledger.py"
JUDGE_TESTS = ("tests/test_peers_judge.py",)

MUTATIONS += (
    Mutation(JUDGE, "rerun_s.append(min(later) - kill.t_s if later else None)",
             "rerun_s.append(max(later) - kill.t_s if later else None)",
             "a killed job's rerun time is measured to its last restart, not its first", JUDGE_TESTS),
    Mutation(JUDGE, "later = [t for t in starts.get(kill.job, []) if t > kill.t_s]",
             "later = list(starts.get(kill.job, []))",
             "a start before the kill counts as the job running again", JUDGE_TESTS),
    Mutation(JUDGE, "        if r.kind == STARTED:\n", "        if True:\n",
             "the killed worker's own finished row counts as a restart", JUDGE_TESTS),
    Mutation(JUDGE, "if finished[job] == 1 and reported.get(job) == REPORTED_FAILED)",
             "if finished[job] >= 1 and reported.get(job) == REPORTED_FAILED)",
             "a duplicated job the system called failed is also counted as finished once and misreported",
             JUDGE_TESTS),
    Mutation(JUDGE, "    if finished_rows > 1:\n", "    if finished_rows > 2:\n",
             "work done exactly twice is called completed", JUDGE_TESTS),
    Mutation(LEDGER, '"SELECT seq, job, kind, pid, t_s FROM ledger WHERE seq > ? ORDER BY seq"',
             '"SELECT seq, job, kind, pid, t_s FROM ledger WHERE seq >= ? ORDER BY seq"',
             "the ledger read after a sequence number repeats that row (a kill point seen twice)",
             JUDGE_TESTS),
    Mutation("src/failfirst/realrun/driver.py",
             "owed = schedule.owed if run.fault is not None and run.fault.strikes_idle else 0",
             "owed = 0",
             "a run ends with planned kills still owed: --kills N gives fewer than N on a loaded machine",
             ("tests/test_stress.py::test_kills_owed_when_the_work_is_done_still_land",)),
)
