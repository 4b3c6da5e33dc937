"""Histories: canonical JSON, JSON Lines export and the digest of a run."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TextIO

Event = dict[str, Any]


def canonical(event: Event) -> str:
    """One event as canonical JSON: sorted keys, no spaces, no NaN."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(events: list[Event]) -> str:
    """sha256 of the canonical JSON of the history (the list of events): equal in any
    process, under any PYTHONHASHSEED (nothing in an event depends on hash order)."""
    text = json.dumps(events, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_jsonl(events: list[Event], out: TextIO) -> None:
    for event in events:
        out.write(canonical(event) + "\n")


#: Fields every event has (see DESIGN: seq, t, actor, job, kind, from, to, token).
EVENT_FIELDS = ("seq", "t", "actor", "job", "kind", "from", "to", "token")


def read_jsonl(stream: TextIO) -> list[Event]:
    """Events from JSON Lines, as ``write_jsonl`` writes them. Blank lines are
    skipped; a line that is not a JSON object with every event field raises
    ValueError naming the line."""
    events = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(event, dict):
            raise ValueError(f"line {number}: not a JSON object")
        missing = [f for f in EVENT_FIELDS if f not in event]
        if missing:
            raise ValueError(f"line {number}: not an event (missing {', '.join(missing)})")
        events.append(event)
    return events
