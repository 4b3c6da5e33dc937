"""How a one-line message shows what the user typed: the one helper for every echo of
user input (an id, a schedule, a schema name, a path).

Input is quoted with ``repr`` so that a newline, a control character or a trailing
space shows and cannot cut the line or hide in it, and long input is shortened with
its length said: a 5,000-character id must not turn a one-line error into a page.
"""

from __future__ import annotations

#: Characters of user input a message shows before it shortens the rest.
MAX_SHOWN_CHARS = 60
#: Paths are often long and legitimately so: they are shortened only beyond this.
MAX_SHOWN_PATH_CHARS = 240


def shown(text: object, *, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` quoted for a one-line message, shortened to ``limit`` characters."""
    assert limit >= 1
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def shown_path(path: str) -> str:
    """A path as a message shows it: as typed, unless it holds a character that would
    break the line (then quoted and escaped) or is longer than a line (then shortened)."""
    if path.isprintable() and len(path) <= MAX_SHOWN_PATH_CHARS:
        return path
    return shown(path, limit=MAX_SHOWN_PATH_CHARS)
