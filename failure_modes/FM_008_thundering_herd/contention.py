"""FM_008's contention model: N clients, one optimistic write each, one contended resource.

Each client reads the resource's version, then writes with it; the write fails when
another write landed since the read (optimistic concurrency, a compare-and-set). A
client that fails waits as its backoff policy says (:mod:`failfirst.processor.backoff`) and
tries again — read, then write — until its write succeeds. Every message between a
client and the resource takes ``|Normal(10 ms, 2 ms)|``. All clients start at once:
the herd.

A deterministic discrete-event simulation: a heap of events on simulated time (in
milliseconds), every draw from one ``random.Random(seed)``, no wall clock. It measures
the two things the AWS article compares: the total calls (writes) the resource
received, and the time until the last client completed.

Run ``python -m failure_modes.FM_008_thundering_herd.contention --out FILE`` (or
``make fm008-backoff``) to write the table as JSON.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from failfirst.processor import backoff

BASE_MS = 5.0
CAP_MS = 2000.0
DELAY_MEAN_MS = 10.0
DELAY_SD_MS = 2.0
CLIENTS = (10, 20, 30, 40, 50)
SEEDS = 100
#: A bound on every run: no client makes more writes than this (none comes close).
MAX_WRITES_PER_CLIENT = 100_000

_READ, _WRITE = 0, 1


@dataclass(frozen=True)
class Outcome:
    policy: str
    clients: int
    seed: int
    #: Writes the resource received, failed ones included.
    calls: int
    #: Simulated milliseconds until the last client's write succeeded (its answer arrived).
    completion_ms: float


def run(policy: str, clients: int, seed: int) -> Outcome:
    """One run: ``clients`` clients, each retrying under ``policy`` until its write lands."""
    backoff.check_policy(policy)
    assert clients >= 1
    rng = random.Random(seed)

    def message_ms() -> float:
        return abs(rng.gauss(DELAY_MEAN_MS, DELAY_SD_MS))

    version = 0
    read_version = [0] * clients
    failures = [0] * clients
    previous_ms: list[float | None] = [None] * clients
    events: list[tuple[float, int, int, int]] = []  # (arrival ms at the resource, seq, kind, client)
    seq = 0
    for client in range(clients):
        heapq.heappush(events, (message_ms(), seq, _READ, client))
        seq += 1
    calls = 0
    completion_ms = 0.0
    done = 0
    while events:
        t_ms, _, kind, client = heapq.heappop(events)
        if kind == _READ:
            # The read reaches the resource; the answer goes back, then the write comes in.
            read_version[client] = version
            heapq.heappush(events, (t_ms + message_ms() + message_ms(), seq, _WRITE, client))
            seq += 1
            continue
        calls += 1
        assert calls <= MAX_WRITES_PER_CLIENT * clients, "a run must end"
        answered_ms = t_ms + message_ms()
        if read_version[client] == version:  # no write landed since this client's read
            version += 1
            done += 1
            completion_ms = max(completion_ms, answered_ms)
            continue
        failures[client] += 1
        wait_ms = backoff.delay(policy, base=BASE_MS, cap=CAP_MS, exponent=failures[client],
                                previous=previous_ms[client], rng=rng)
        previous_ms[client] = wait_ms
        heapq.heappush(events, (answered_ms + wait_ms + message_ms(), seq, _READ, client))
        seq += 1
    assert done == clients == version, "every client wrote exactly once"
    return Outcome(policy, clients, seed, calls, completion_ms)


def table(clients: tuple[int, ...] = CLIENTS, seeds: int = SEEDS,
          policies: tuple[str, ...] = backoff.POLICIES) -> list[dict[str, float | int | str]]:
    """Rows of ``policy``, ``clients``, and the means over ``seeds`` seeds of ``calls``
    and ``completion`` (simulated milliseconds)."""
    rows: list[dict[str, float | int | str]] = []
    for policy in policies:
        for n in clients:
            runs = [run(policy, n, seed) for seed in range(seeds)]
            rows.append({
                "policy": policy, "clients": n,
                "calls": round(statistics.fmean(r.calls for r in runs), 2),
                "completion": round(statistics.fmean(r.completion_ms for r in runs), 2),
            })
    return rows


def write(path: str | Path, rows: list[dict[str, float | int | str]]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="_build/fm008/backoff.json", help="the JSON file to write")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds per (policy, clients)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds: must be at least 1")
    rows = table(seeds=args.seeds)
    path = write(args.out, rows)
    for row in rows:
        print(f"{row['policy']:>20} {row['clients']:>4} clients: {row['calls']:>9} calls, "
              f"{row['completion']:>10} ms")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
