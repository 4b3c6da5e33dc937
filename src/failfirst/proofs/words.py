"""Counts and bounds in words, for the command line's text output and the book: ``1 fault``
and ``2 faults``, never ``1 faults``; ``ten failure modes``; an exploration's bounds as
``2 workers, 3 jobs, at most 3 faults per schedule`` rather than a Python dict.

Pure functions of their arguments, so a chapter that prints them does not change between
builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["bounds_in_words", "count_in_words", "plural"]

#: Counts up to twelve are spelled out in running text (``ten failure modes``).
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve")


def _noun(count: int, word: str, words: str | None) -> str:
    return word if count == 1 else (words or word + "s")


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 fault``, ``2 faults``, ``10,000 jobs`` (``words`` for an irregular plural)."""
    return f"{count:,} {_noun(count, word, words)}"


def count_in_words(count: int, word: str, words: str | None = None) -> str:
    """``one failure mode``, ``ten failure modes``, ``no faults``; past twelve in digits
    (``13 failure modes``), as :func:`plural` writes them."""
    if 0 <= count < len(_NUMBER_WORDS):
        return f"{_NUMBER_WORDS[count]} {_noun(count, word, words)}"
    return plural(count, word, words)


#: An exploration's bound keys (DESIGN.md: explore's JSON ``bounds``) in words.
_BOUND_WORDS = {"workers": ("worker", "{}"), "jobs": ("job", "{}"),
                "max_faults": ("fault", "at most {} per schedule"),
                "max_steps": ("step", "at most {} per run")}


def bounds_in_words(bounds: Mapping[str, Any]) -> str:
    """An exploration's bounds in words: ``2 workers, 4 jobs, at most 3 faults per schedule,
    at most 200 steps per run``; a key this does not know is written ``key value``."""
    parts = []
    for key, value in bounds.items():
        if key in _BOUND_WORDS and isinstance(value, int):
            noun, form = _BOUND_WORDS[key]
            parts.append(form.format(plural(value, noun)))
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)
