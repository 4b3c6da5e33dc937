"""What the pytest plugin tells a proof about the test running it, and where proofs
write what they will run before they run it. Imports nothing heavy: the plugin loads
this module in every pytest session, and must cost nothing until a test uses it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: The pytest node id of the test running now (None outside pytest).
current_test: str | None = None
#: ``--failfirst-replay``: the schedule every proof of the selected test replays.
replay_schedule: str | None = None
#: Where proofs write their announcements and counterexamples (the plugin sets it).
record_dir: Path | None = None
#: Every proof this process ran: dicts with name, test, schedules, reached, elapsed_s,
#: schedules_per_s, first_counterexample_s, falsified (a schedule or None).
proofs: list[dict[str, Any]] = []


def announce(line: str) -> None:
    """Write what a proof is about to run, flushed to disk before it runs."""
    if record_dir is None:
        return
    record_dir.mkdir(parents=True, exist_ok=True)
    with open(record_dir / "proofs.log", "a", encoding="utf-8") as out:
        out.write(f"{current_test or '-'}\t{line}\n")
        out.flush()
        os.fsync(out.fileno())


def record_counterexample(schedule: str, digest: str, violations: list[dict[str, Any]]) -> None:
    """Keep a counterexample (its schedule, history digest and violations), so that a
    replay can compare its result with the recorded one. One file per test, replaced
    whole (os.replace): pytest-xdist's workers never write the same file."""
    path = _record_path()
    if path is None:
        return
    records = _load(path)
    records[schedule] = {"test": current_test, "digest": digest, "violations": violations}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(records, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(partial, path)


def recorded(schedule: str) -> dict[str, Any] | None:
    """The recorded result of this test's run of ``schedule``, if any."""
    path = _record_path()
    return None if path is None else _load(path).get(schedule)


def _record_path() -> Path | None:
    if record_dir is None or current_test is None:
        return None
    name = hashlib.sha256(current_test.encode()).hexdigest()[:16]
    return record_dir / "counterexamples" / f"{name}.json"


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
