"""Rows as both stores read them back: decoding that never raises.

A store file or schema can be edited by hand or damaged, and the judge must still
give a verdict. So a JSON column that does not decode is never an exception here:
an event whose ``data`` is not a JSON object comes back with its columns and a
:data:`MALFORMED` field saying why, which the checkers report ("the history is
malformed at seq N") and leave out of their judgement; a job whose ``payload`` is not
a JSON object carries a :class:`MalformedPayload`, which a handler cannot read (its
attempt fails, as any handler error does) and a checker names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from failfirst.store.interface import Job

#: The columns of an event row, in order (``data`` holds the kind-specific fields).
EVENT_COLUMNS = ("seq", "t", "actor", "job", "kind", "from", "to", "token")
#: The field a decoded event carries when its row is malformed: why, in a phrase.
MALFORMED = "malformed"


#: Why a JSON column is malformed, in the words both stores use (SQLite says it in SQL).
NOT_TEXT, NOT_JSON, NOT_OBJECT = "is not JSON text", "is not JSON", "is JSON but not an object"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(text: Any, *, strict: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON object in ``text``, None), or (None, why it is not one). ``strict``:
    NaN and Infinity, which Python's json reads and JSON has not, are not JSON either
    (as SQLite's json_valid judges a payload: both stores and a handler then agree)."""
    if not isinstance(text, str):
        return None, NOT_TEXT
    try:
        value = json.loads(text, parse_constant=_no_constant) if strict else json.loads(text)
    except ValueError:
        return None, NOT_JSON
    if not isinstance(value, dict):
        return None, NOT_OBJECT
    return value, None


def payload_problem(text: Any) -> str | None:
    """Why a ``jobs.payload`` is not a JSON object, or None when it is one."""
    return _object(text, strict=True)[1]


def event_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """An event from its row (the columns of :data:`EVENT_COLUMNS`, then ``data``)."""
    event = dict(zip(EVENT_COLUMNS, row[:len(EVENT_COLUMNS)], strict=True))
    data, why = _object(row[len(EVENT_COLUMNS)])
    if data is None:
        event[MALFORMED] = f"its data {why}"
        return event
    clash = sorted(set(data) & (set(EVENT_COLUMNS) | {MALFORMED}))
    if clash:  # a field that would overwrite a column: the row says two things at once
        event[MALFORMED] = f"its data repeats the column {clash[0]!r}"
        return event
    event.update(data)
    return event


class MalformedPayload:
    """A ``jobs.payload`` that is not a JSON object. It is never mistaken for an empty
    payload: reading anything of it raises ValueError, so the handler's attempt fails
    and the job is retried, then dead-lettered with the reason, and the checkers name
    the job."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self, *args: object) -> Any:
        raise ValueError(f"the job's payload {self.reason}")

    __getitem__ = __iter__ = __len__ = __contains__ = _refuse

    def __getattr__(self, name: str) -> Any:  # payload.get(...), payload.keys(), ...
        if name.startswith("__"):  # copy, pickle and friends probe for optional hooks
            raise AttributeError(name)
        self._refuse()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MalformedPayload) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(self.reason)

    def __repr__(self) -> str:
        return f"MalformedPayload({self.reason!r})"


def job_from_row(row: Sequence[Any]) -> Job:
    """A job from its row (``id, type, payload, ...`` as both stores select it)."""
    payload, why = _object(row[2], strict=True)
    return Job(row[0], row[1], payload if payload is not None else MalformedPayload(why or ""),
               *row[3:])
