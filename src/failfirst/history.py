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


def read_jsonl(stream: TextIO) -> list[Event]:
    return [json.loads(line) for line in stream if line.strip()]
