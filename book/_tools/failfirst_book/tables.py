"""Tables of histories and results, and the words the book prints values with.

Everything here is deterministic: the same history gives the same HTML, so an
executed chapter does not change between builds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from failfirst.proofs.words import bounds_in_words, count_in_words
from failfirst.proofs.words import plural as words_plural

__all__ = [
    "EVENT_COLUMNS",
    "Table",
    "fmt_bounds",
    "fmt_mapping",
    "fmt_schedule",
    "fmt_violation",
    "in_words",
    "peers_cell",
    "peers_cells",
    "peers_matrix",
    "plain",
    "plural",
    "settings_fold",
    "trace_table",
    "violation_table",
]


#: The columns every event has (DESIGN.md, "The simulator"); other keys are extras.
EVENT_COLUMNS = ("seq", "t", "actor", "job", "kind", "from", "to", "token")


# --------------------------------------------------------------------------- tables


class Table:
    """A small table that renders as HTML in a notebook and as text elsewhere."""

    def __init__(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        highlight: Sequence[bool] | None = None,
        caption: str | None = None,
    ) -> None:
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.highlight = list(highlight) if highlight is not None else [False] * len(rows)
        self.caption = caption

    def _repr_html_(self) -> str:
        esc = _breakable
        out = ['<div class="ff-table-wrap"><table class="ff-table">']
        if self.caption:
            out.append(f"<caption>{_caption_html(self.caption)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in self.columns))
        out.append("</tr></thead><tbody>")
        for row, hot in zip(self.rows, self.highlight, strict=True):
            cls = ' class="ff-hot"' if hot else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
        out.append("</tbody></table></div>")
        return "".join(out)

    def _repr_markdown_(self) -> str:
        def cell(v: str) -> str:
            return v.replace("|", "\\|")

        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row, hot in zip(self.rows, self.highlight, strict=True):
            cells = [f"**{cell(v)}**" if hot and v else cell(v) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = ["  " + fmt.format(*self.columns)]
        for row, hot in zip(self.rows, self.highlight, strict=True):
            lines.append(("> " if hot else "  ") + fmt.format(*row))
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__


def _breakable(text: str) -> str:
    """HTML of ``text`` in which a long identifier may break after ``_``, ``.``, ``/``, ``=``
    or ``,`` (``task_reject_on_<wbr>worker_lost``), so a narrow column wraps at an
    identifier's joints and never inside a word."""
    return re.sub(r"([_/=]|[.,](?=[A-Za-z]))(?=\S)", r"\1<wbr>", html.escape(text))


def _caption_html(text: str) -> str:
    """A caption's HTML: ``code`` spans written with backticks become <code>, as the
    Markdown around the table would render them."""
    parts = html.escape(text).split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: leave the text as written
        return html.escape(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


# --------------------------------------------------------------------------- words for readers


def fmt_mapping(values: Mapping[Any, Any], unit: str = "") -> str:
    """``{'alice': -500, 'bob': 500}`` as ``alice -500, bob 500`` (with ``unit`` after each)."""
    if not values:
        return "none"
    sep = " " if unit else ""
    return ", ".join(f"{k} {v:,}{sep}{unit}" if isinstance(v, int) else f"{k} {v}{sep}{unit}"
                     for k, v in values.items())


def fmt_bounds(bounds: Mapping[str, Any]) -> str:
    """An exploration's bounds in words: ``2 workers, 4 jobs, at most 2 faults per schedule,
    at most 200 steps per run`` (the command line's words: :func:`failfirst.proofs.words.bounds_in_words`)."""
    return bounds_in_words(bounds)


def fmt_schedule(schedule: str) -> str:
    """A schedule string, with a word when it has no choices at all."""
    if schedule.endswith(":"):
        return (f"{schedule} (empty: every decision took its first option — no fault injected, "
                "the first ready actor moved)")
    return schedule


def fmt_violation(v: Any) -> str:
    """One violation in a sentence: a run-level one says so instead of ``job None``."""
    who = "the whole run" if v.job is None else f"job {v.job}"
    events = f" (events {', '.join(str(e) for e in v.events)})" if getattr(v, "events", ()) else ""
    return f"{v.invariant}, {who}: {v.detail}{events}"


def violation_table(violations: Iterable[Any]) -> Table:
    """Violations as a table: invariant, job (or "the run"), events, what the checker found."""
    rows = [[v.invariant, "the run" if v.job is None else v.job,
             ", ".join(str(e) for e in v.events), v.detail] for v in violations]
    return Table(["invariant", "job", "events", "what the checker found"], rows,
                 caption=f"{len(rows)} violation{'s' if len(rows) != 1 else ''}")


def _extras(event: Mapping[str, Any]) -> str:
    """An event's kind-specific fields in words: ``attempt=1; until=17.087``, a field
    that is None left out, a float to the millisecond, a list or mapping written
    out without JSON's brackets and quotes."""
    extra = {k: v for k, v in event.items() if k not in EVENT_COLUMNS and v is not None}
    return "; ".join(f"{k}={plain(v)}" for k, v in sorted(extra.items()))


def plain(value: Any) -> str:
    """A value as a reader reads it: ``17.086759999999998`` as ``17.087`` (simulated
    seconds to the millisecond), ``None`` as ``none``, ``{"attempt": 1}`` as ``attempt 1``,
    ``[1, 2]`` as ``1, 2``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {plain(v)}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) or "none"
    return str(value)


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 fault``, ``2 faults`` (``words`` for an irregular plural);
    :func:`failfirst.proofs.words.plural`, the command line's words."""
    return words_plural(count, word, words)


def in_words(count: int, word: str, words: str | None = None) -> str:
    """``one failure mode``, ``ten failure modes`` (:func:`failfirst.proofs.words.count_in_words`):
    a count in running text, agreeing in number."""
    return count_in_words(count, word, words)


def trace_table(
    events: Iterable[Mapping[str, Any]],
    *,
    highlight: Iterable[int] = (),
    kinds: Iterable[str] | None = None,
    jobs: Iterable[int] | None = None,
    max_rows: int = 200,
) -> Table:
    """A compact table of a history: one row per event.

    ``highlight`` is a set of ``seq`` numbers to mark (say, the events a
    violation names). ``kinds`` and ``jobs`` filter rows. Extra, kind-specific
    fields are shown as ``key=value`` in the last column. At most ``max_rows``
    rows are shown; the caption says how many were left out.
    """
    hot = set(highlight)
    kind_set = set(kinds) if kinds is not None else None
    job_set = set(jobs) if jobs is not None else None
    selected = [
        e for e in events
        if (kind_set is None or e.get("kind") in kind_set)
        and (job_set is None or e.get("job") in job_set)
    ]
    shown = selected[:max_rows]
    rows = [[_fmt(e.get(c)) for c in EVENT_COLUMNS] + [_extras(e)] for e in shown]
    caption = None
    if len(selected) > len(shown):
        caption = f"first {len(shown)} of {len(selected)} events"
    return Table(
        [*EVENT_COLUMNS, "extra"],
        rows,
        highlight=[e.get("seq") in hot for e in shown],
        caption=caption,
    )


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return _float(v)
    return v


def _float(v: float) -> str:
    """Three decimals at most (times in a history are seconds: to the millisecond), no
    trailing zeros; a value below a thousandth at three significant digits."""
    if v != 0 and abs(v) < 0.001:
        return f"{v:.3g}"
    return f"{v:.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- the peers matrix

#: A peers result row's categories, in the order a cell prints them.
PEERS_CATEGORIES = ("completed", "duplicated", "lost", "failed", "stuck")
#: What a cell says when the fault does not apply, or when nothing was measured.
PEERS_NA = "n/a"
PEERS_NOT_RUN = "not measured"


def peers_cells(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, list]]:
    """The peers results grouped by configuration ``(system, broker, config)``, then fault."""
    cells: dict[tuple[str, str, str], dict[str, list]] = {}
    for row in rows:
        key = (row["system"], row["broker"], row["config"])
        cells.setdefault(key, {}).setdefault(row["fault"], []).append(row)
    return cells


def peers_cell(runs: Sequence[Mapping[str, Any]]) -> str:
    """One cell: each category's job count summed over the runs, and for each category but
    ``completed`` the seeds that show it (``completed 11 · duplicated 1 (seed 0)``); then
    how many completed jobs the system nevertheless reported failed."""
    parts = []
    for category in PEERS_CATEGORIES:
        total = sum(r[category] for r in runs)
        if not total:
            continue
        seeds = sorted({r["seed"] for r in runs if r[category]})
        shown = "" if category == "completed" else (
            f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})")
        parts.append(f"{category} {total}{shown}")
    # Completed by the ledger, but the system told its operator the job failed.
    misreported = sum(r.get("reported_failed_but_finished", 0) for r in runs)
    if misreported:
        parts.append(f"of which reported failed {misreported}")
    return " · ".join(parts)


def peers_clean(runs: Sequence[Mapping[str, Any]]) -> bool:
    """Every job of every run completed exactly once."""
    return all(r["completed"] == r["jobs"] for r in runs)


def peers_matrix(configs: Sequence[tuple[tuple[str, str, str], str]],
                 faults: Sequence[tuple[str, Any]],
                 rows: Iterable[Mapping[str, Any]]) -> Table:
    """Configurations down, faults across. ``configs``: (key, label) in order; ``faults``:
    (name, why_not) where ``why_not(key)`` says why the fault does not apply ("" if it does).
    A cell is the counts of :func:`peers_cell`, ``n/a: why``, or ``not measured``; a row is
    highlighted when one of its measured cells is not clean."""
    cells = peers_cells(rows)
    table, hot = [], []
    for key, label in configs:
        line, harmed = [label], False
        for name, why_not in faults:
            reason = why_not(key)
            runs = cells.get(key, {}).get(name, [])
            if reason:
                line.append(f"{PEERS_NA}: {reason}")
            elif runs:
                line.append(peers_cell(runs))
                harmed = harmed or not peers_clean(runs)
            else:
                line.append(PEERS_NOT_RUN)
        table.append(line)
        hot.append(harmed)
    return Table(["configuration", *[name for name, _ in faults]], table, highlight=hot)


def settings_fold(title: str, fields: Mapping[str, Any]) -> str:
    """A folded block (HTML ``<details>``, one line) titled ``title`` listing ``fields``: it
    renders the same in the book and in a downloaded notebook, where a MyST dropdown
    would show raw."""
    items = "".join(f"<li><b>{html.escape(k)}:</b> {html.escape(str(v))}</li>" for k, v in fields.items())
    return f"<details><summary>{html.escape(title)}</summary><ul>{items}</ul></details>"
