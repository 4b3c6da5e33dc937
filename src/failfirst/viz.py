"""Pictures and tables of histories, for the book and for notebooks.

Everything here is deterministic: the same history gives the same HTML and the
same SVG bytes, so an executed chapter does not change between builds.

matplotlib is only in the ``docs`` dependency group, so it is imported inside
the functions that need it. Figures are built with ``matplotlib.figure.Figure``
directly, never through ``pyplot``: no backend is selected, nothing is shown
twice by the notebook's inline backend, and no ``matplotlib.use("Agg")`` is
needed in scripts or kernels.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Evidence",
    "Table",
    "build_path",
    "fmt_bounds",
    "fmt_mapping",
    "fmt_schedule",
    "fmt_violation",
    "loop_diagram",
    "of",
    "per_second",
    "rate_figure",
    "record_evidence",
    "state_diagram",
    "svg",
    "timeline",
    "trace_table",
    "try_it",
    "violation_table",
]

#: The columns every event has (DESIGN.md, "The simulator"); other keys are extras.
EVENT_COLUMNS = ("seq", "t", "actor", "job", "kind", "from", "to", "token")

# A fixed palette (matplotlib's tab10) so colours never depend on global state.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)


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
        esc = html.escape
        out = ['<div class="ff-table-wrap"><table class="ff-table">']
        if self.caption:
            out.append(f"<caption>{esc(self.caption)}</caption>")
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


# --------------------------------------------------------------------------- files


def build_path(*parts: str) -> Any:
    """A file under the repository's ``_build/`` (say, a benchmark's results), from any folder.

    A chapter runs in ``book/`` under Sphinx and pytest, but in ``_build/notebooks/``
    under ``make notebooks`` and wherever a reader opens it: never ``Path.cwd()``.
    The repository is found from the installed ``failure_modes`` package (the
    editable install ``make sync`` makes).
    """
    from pathlib import Path

    import failure_modes

    return Path(failure_modes.__file__).resolve().parent.parent.joinpath("_build", *parts)


# --------------------------------------------------------------------------- words for readers


def fmt_mapping(values: Mapping[Any, Any], unit: str = "") -> str:
    """``{'alice': -500, 'bob': 500}`` as ``alice -500, bob 500`` (with ``unit`` after each)."""
    if not values:
        return "none"
    sep = " " if unit else ""
    return ", ".join(f"{k} {v:,}{sep}{unit}" if isinstance(v, int) else f"{k} {v}{sep}{unit}"
                     for k, v in values.items())


def fmt_bounds(bounds: Mapping[str, Any]) -> str:
    """An exploration's bounds in words: ``2 workers, 4 jobs, at most 2 faults, 200 steps``."""
    words = {"workers": "{} workers", "jobs": "{} jobs", "max_faults": "at most {} faults per schedule",
             "max_steps": "at most {} steps per run"}
    parts = [words[k].format(v) for k, v in bounds.items() if k in words]
    parts += [f"{k} {v}" for k, v in bounds.items() if k not in words]
    return ", ".join(parts)


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
    extra = {k: v for k, v in event.items() if k not in EVENT_COLUMNS}
    return " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(extra.items()))


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
        return f"{v:g}"
    return v


# --------------------------------------------------------------------------- figures


def svg(fig: Any) -> Any:
    """Display a matplotlib Figure as deterministic inline SVG (returns an IPython SVG).

    Text is drawn as paths (no font is loaded by the browser), the SVG carries
    no date, and element ids come from a fixed salt, so the bytes depend only
    on the figure.
    """
    import matplotlib
    from IPython.display import SVG  # only ever called inside a kernel

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "failfirst", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return SVG(buf.getvalue())


def _new_figure(width_in: float, height_in: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    return fig, fig.add_subplot()


# Lease bookkeeping for the timeline: which events end a lease, and who ends it.
_HOLDER_ENDS = {"complete", "retry", "dead", "fail"}  # the holder itself ends the lease
_REAPER_ENDS = {"expire", "expire_dead"}  # the reaper ends whoever holds it
_MARKERS = {  # kind -> (marker, colour, label)
    "effect": ("o", "#2ca02c", "effect"),
    "refused": ("o", "#bbbbbb", "refused write"),
    "complete": ("^", "#1f77b4", "complete"),
    "crash": ("X", "#d62728", "crash"),
    "expire": ("D", "#ff7f0e", "lease expired"),
    "expire_dead": ("D", "#8c564b", "expired, dead"),
    "recover": ("*", "#17becf", "recover"),
    # Other systems' own records (FM_009, FM_010) and the faults of an external call.
    "charge": ("s", "#9467bd", "charge at the provider"),
    "consume": ("v", "#9467bd", "message consumed"),
    "duplicate": ("v", "#bbbbbb", "duplicate dropped"),
    "request_lost": ("x", "#d62728", "request lost"),
    "response_lost": ("x", "#ff7f0e", "response lost"),
    "slow_response": ("x", "#8c564b", "provider slow"),
}
# Effects are drawn below the bars, everything else above, so that an effect and
# a refused write or a completion at the same instant do not hide each other.
_ABOVE = {"refused", "complete", "crash", "expire", "expire_dead", "recover"}


def timeline(
    events: Sequence[Mapping[str, Any]],
    ax: Any = None,
    *,
    x: str = "t",
    highlight: Iterable[int] = (),
    title: str | None = None,
) -> Any:
    """Draw a history as lanes: one lane per actor, leases as bars, markers for events.

    The bars draw what the store holds. A lease is a filled bar in its holder's
    lane from ``claim`` until the holder ends it (complete, retry, dead, fail) or
    the reaper takes it back (expire). A holder that crashes does not end its
    lease: the job stays leased in the store, so the bar goes on, hatched, in the
    dead holder's lane until the reaper expires it, another claim takes the job,
    or — when neither happens — to the end of the run, with an open (dashed)
    end. A holder that keeps working after its lease expired (a zombie) gets a
    red dashed outline from the expiry to its last event on that lease. A pause
    with a ``pause_s`` field is a hatched span. Markers show effects, refused
    writes, completions, crashes and expiries (an expiry in the lane of the
    lease it ends). Events whose ``seq`` is in ``highlight`` (say, those a
    violation names) get a red ring. Bars are labelled ``j<job>·t<token>`` when
    the label fits inside; the legend names the colour of each job. ``x`` is the
    horizontal axis: ``"t"`` (simulated seconds) or ``"seq"``. Returns the
    Figure; pass ``ax`` to draw into an existing Axes.
    """
    hot = set(highlight)
    jobs: list[Any] = list(dict.fromkeys(e["job"] for e in events if e.get("job") is not None))
    colour = {j: _PALETTE[i % len(_PALETTE)] for i, j in enumerate(jobs)}
    xs = [float(e[x]) for e in events] or [0.0]
    x_start, x_end = min(xs), max(xs)
    span = max(x_end - x_start, 1e-9)
    min_width = span / 200.0  # keep instant leases visible

    holder_of: dict[Any, tuple[str, float, Any, bool]] = {}  # job -> (holder, start, token, orphaned)
    expired: dict[tuple[Any, Any], tuple[str, float]] = {}  # (job, token) -> (holder, at)
    # holder, start, end, job, token, open at the end, held by a crashed holder
    bars: list[tuple[str, float, float, Any, Any, bool, bool]] = []
    zombies: dict[tuple[Any, Any], tuple[str, float, float]] = {}  # (job, token) -> lane, from, to
    pauses: list[tuple[str, float, float]] = []
    marks: list[tuple[str, float, str, bool]] = []  # lane, at, kind, highlighted

    def close(job: Any, end: float) -> str:
        holder, start, token, orphaned = holder_of.pop(job)
        bars.append((holder, start, end, job, token, False, orphaned))
        return holder

    for e in events:
        kind, job, actor, at = e["kind"], e.get("job"), e["actor"], float(e[x])
        lane = actor
        if (job, e.get("token")) in expired and actor == expired[(job, e.get("token"))][0]:
            holder, since = expired[(job, e.get("token"))]  # the old holder is still at it
            zombies[(job, e.get("token"))] = (holder, since, at)
        if kind == "claim" and job is not None:
            if job in holder_of:  # a new lease implies the old one ended unseen
                close(job, at)
            holder_of[job] = (actor, at, e.get("token"), False)
        elif (kind in _HOLDER_ENDS and job in holder_of and holder_of[job][0] == actor
              and not holder_of[job][3]):
            close(job, at)
        elif kind in _REAPER_ENDS and job in holder_of:
            token = holder_of[job][2]
            lane = close(job, at)
            expired[(job, token)] = (lane, at)
        elif kind == "crash":
            # The store still says "leased": the lease outlives its holder.
            for held in [j for j, (h, _, _, dead) in holder_of.items() if h == actor and not dead]:
                holder, _, token, _ = holder_of[held]
                close(held, at)
                holder_of[held] = (holder, at, token, True)
        elif kind == "pause" and e.get("pause_s") is not None and x == "t":
            pauses.append((actor, at, at + float(e["pause_s"])))
        if kind in _MARKERS:
            marks.append((lane, at, kind, e.get("seq") in hot))
    for job, (holder, start, token, orphaned) in list(holder_of.items()):
        bars.append((holder, start, x_end, job, token, True, orphaned))

    drawn = {b[0] for b in bars} | {m[0] for m in marks} | {p[0] for p in pauses}
    actors = [a for a in dict.fromkeys(e["actor"] for e in events) if a in drawn]
    row = {a: i for i, a in enumerate(actors)}
    if ax is None:
        fig, ax = _new_figure(9.0, 1.0 + 0.6 * max(len(actors), 1))
    else:
        fig = ax.figure
    pad = span * 0.02
    ax.set_xlim(x_start - pad, x_end + pad)
    # Roughly how much of the axis a character of the 7-point labels takes: the
    # axes are about 6.5 inches wide, a character about 0.055 inches.
    char_w = (span + 2 * pad) * 0.055 / 6.5

    unlabelled: list[Any] = []
    for holder, start, end, job, token, unfinished, orphaned in bars:
        width = max(end - start, min_width)
        if orphaned:  # a thin hatched band along the lane: a new lease may sit above it
            ax.barh(row[holder] + 0.17, width, left=start, height=0.16, color=colour[job],
                    alpha=0.6, hatch="xxx", edgecolor=colour[job],
                    linestyle="--" if unfinished else "-", linewidth=0.8, zorder=2.5)
            continue  # the lease's first bar carries the label
        ax.barh(row[holder], width, left=start, height=0.5, color=colour[job], alpha=0.35,
                edgecolor=colour[job], linestyle="--" if unfinished else "-", linewidth=1.0)
        label = f"j{job}" + (f"·t{token}" if token is not None else "")
        if width >= (len(label) + 1) * char_w:
            ax.text(start + width / 2, row[holder], label, ha="center", va="center", fontsize=7,
                    clip_on=True)
        else:
            unlabelled.append(job)
    for holder, start, end in zombies.values():
        ax.barh(row[holder], max(end - start, min_width), left=start, height=0.5, fill=False,
                edgecolor="#d62728", linestyle="--", linewidth=1.0)
    for lane, start, end in pauses:
        ax.barh(row[lane], end - start, left=start, height=0.22, fill=False, hatch="///",
                edgecolor="#9467bd", linewidth=0.6, label=None)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    legend: dict[str, Any] = {}  # label -> handle, in order of first use
    for job in dict.fromkeys(b[3] for b in bars):
        legend[f"job {job}"] = Patch(facecolor=colour[job], alpha=0.5, edgecolor=colour[job])
    if any(b[6] for b in bars):
        legend["leased by a crashed worker"] = Patch(facecolor="white", hatch="xx",
                                                     edgecolor="#555555", linestyle="--")
    for lane, at, kind, is_hot in marks:
        marker, col, label = _MARKERS[kind]
        y = row[lane] + (-0.34 if kind in _ABOVE else 0.34)
        if is_hot:
            ax.scatter([at], [y], marker="o", s=110, facecolors="none", edgecolors="#d62728",
                       linewidths=1.4, zorder=4)
        ax.scatter([at], [y], marker=marker, color=col, s=28, zorder=3)
        legend.setdefault(label, Line2D([], [], marker=marker, color=col, linestyle="none"))
    if pauses:
        legend["pause"] = Patch(fill=False, hatch="///", edgecolor="#9467bd")
    if zombies:
        legend["working after its lease"] = Patch(fill=False, edgecolor="#d62728", linestyle="--")
    if hot:
        legend["named by a violation"] = Line2D([], [], marker="o", markerfacecolor="none",
                                                markeredgecolor="#d62728", linestyle="none")

    ax.set_yticks(range(len(actors)), actors)
    ax.set_ylim(len(actors) - 0.4, -0.6)
    ax.set_xlabel("simulated seconds" if x == "t" else "event sequence")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if legend:
        ax.legend(legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def per_second(times_s: Iterable[float], horizon_s: int) -> list[int]:
    """How many of ``times_s`` fall in each whole second from 0 to ``horizon_s``."""
    counts = [0] * horizon_s
    for t in times_s:
        if 0 <= t < horizon_s:
            counts[int(t)] += 1
    return counts


def rate_figure(
    series: Mapping[str, Sequence[int]],
    *,
    shade: tuple[float, float] | None = None,
    shade_label: str = "",
    title: str = "",
    ylabel: str = "per second",
    colours: Sequence[str] = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"),
) -> Any:
    """Step plots of per-second counts (one line per series) over simulated seconds.

    ``shade`` marks an interval (say, an outage) as a shaded band. Series labels
    go into the legend as given, so they should carry their totals.
    """
    fig, ax = _new_figure(9.0, 3.2)
    horizon_s = max((len(v) for v in series.values()), default=1)
    if shade is not None:
        ax.axvspan(shade[0], shade[1], color="#d62728", alpha=0.12, label=shade_label or None)
    for (label, ys), colour in zip(series.items(), colours, strict=False):
        ax.step(range(len(ys)), ys, where="post", color=colour, linewidth=1.6, label=label)
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, horizon_s)
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _layers(transitions: Mapping[tuple[str, str], str], initial: str) -> dict[str, int]:
    """Column of each state: the longest forward path from ``initial``.

    States are numbered in breadth-first order from ``initial`` (then any state
    it cannot reach); an edge to a later state is "forward". Longest paths over
    forward edges put ``succeeded`` after ``leased`` even when a shortcut edge
    (say, reconciliation) leads there from ``pending`` directly.
    """
    order = [initial]
    for state in order:  # grows while iterating; bounded by the number of states
        for (src, _), dst in transitions.items():
            if src == state and dst not in order:
                order.append(dst)
    for (src, _), dst in transitions.items():
        for st in (src, dst):
            if st not in order:
                order.append(st)
    rank = {st: i for i, st in enumerate(order)}
    column = dict.fromkeys(order, 0)
    for st in order:  # rank order is a topological order of the forward edges
        for (src, _), dst in transitions.items():
            if src == st and rank[dst] > rank[st]:
                column[dst] = max(column[dst], column[st] + 1)
    return column


def state_diagram(
    transitions: Mapping[tuple[str, str], str],
    initial: str,
    *,
    terminal: Iterable[str] = (),
) -> Any:
    """Draw a state machine from its (state, event) -> state table.

    The layout depends only on the table (see ``_layers``): one column per
    step from the initial state, states in a column in order of first
    appearance. Several events between the same two states share one arrow;
    a pair of opposite arrows bend apart; an arrow that skips a column bows
    away from the middle. ``terminal`` states get a double border.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    column = _layers(transitions, initial)
    col_gap, row_gap, box_w, box_h = 5.4, 2.4, 2.5, 0.75
    by_col: dict[int, list[str]] = {}
    for st, c in column.items():
        by_col.setdefault(c, []).append(st)
    pos = {st: (c * col_gap, (len(sts) - 1) / 2 * row_gap - i * row_gap)
           for c, sts in by_col.items() for i, st in enumerate(sts)}

    edges: dict[tuple[str, str], list[str]] = {}
    for (src, event), dst in transitions.items():
        edges.setdefault((src, dst), []).append(event)

    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    bow = 0.9 + 0.18 * (max(xs) - min(xs)) / col_gap  # room for arcs above and below
    x_lo, x_hi = min(xs) - box_w / 2 - 1.2, max(xs) + box_w / 2 + 0.3
    y_lo, y_hi = min(ys) - box_h / 2 - bow, max(ys) + box_h / 2 + bow
    unit_in = 0.5  # inches per data unit: text stays legible at the page's width
    fig, ax = _new_figure((x_hi - x_lo) * unit_in, (y_hi - y_lo) * unit_in)
    ax.set_axis_off()
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_aspect("equal")

    terminal_set = set(terminal)
    boxes = {}  # state -> its outermost patch: arrows are clipped at its border
    for st, (px, py) in pos.items():
        rings = ((0.0, 1.4), (0.09, 0.8)) if st in terminal_set else ((0.0, 1.4),)
        for pad, lw in rings:
            boxes[st] = ax.add_patch(FancyBboxPatch(
                (px - box_w / 2 - pad, py - box_h / 2 - pad), box_w + 2 * pad, box_h + 2 * pad,
                boxstyle="round,pad=0.05", facecolor="#eef3fb" if pad == 0 else "none",
                edgecolor="#1f3b64", linewidth=lw,
            ))
        ax.text(px, py, st, ha="center", va="center", fontsize=11, fontweight="bold")
    ix, iy = pos[initial]  # the entry arrow into the initial state
    ax.add_patch(FancyArrowPatch((ix - box_w / 2 - 1.0, iy), (ix - box_w / 2 - 0.1, iy),
                                 arrowstyle="-|>", mutation_scale=14, color="#1f3b64"))

    mid_y = (max(ys) + min(ys)) / 2
    for (src, dst), events in edges.items():
        label = " / ".join(events)
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        if src == dst:  # a self-loop above the box
            ax.add_patch(FancyArrowPatch((x0 - 0.3, y0 + box_h / 2), (x0 + 0.3, y0 + box_h / 2),
                                         connectionstyle="arc3,rad=-1.6", arrowstyle="-|>",
                                         mutation_scale=12, color="#444444"))
            ax.text(x0, y0 + box_h / 2 + 0.6, label, ha="center", fontsize=9)
            continue
        dx, dy = x1 - x0, y1 - y0
        if (dst, src) in edges:
            rad = 0.3  # each of the pair bends to its own right: they separate
        elif abs(column[dst] - column[src]) != 1:
            # Bow away from the middle row: the control point's y offset is -rad*dx.
            away = 1.0 if (y0 + y1) / 2 >= mid_y else -1.0
            rad = -away * 0.3 * (1.0 if dx >= 0 else -1.0)
        else:
            rad = 0.0
        ax.add_patch(FancyArrowPatch(
            (x0, y0), (x1, y1), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
            mutation_scale=15, color="#444444", linewidth=1.2,
            patchA=boxes[src], patchB=boxes[dst], shrinkA=3, shrinkB=3,
        ))
        # The curve's midpoint is the chord's midpoint moved by rad/2 * (dy, -dx).
        lx, ly = (x0 + x1) / 2 + rad / 2 * dy, (y0 + y1) / 2 - rad / 2 * dx
        ax.text(lx, ly, label, ha="center", va="center", fontsize=9, color="#222222",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5})
    return fig


def loop_diagram(steps: Sequence[str]) -> Any:
    """Draw the experiment loop: the steps in a row, joined by arrows."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = _new_figure(1.75 * len(steps), 1.3)
    ax.set_axis_off()
    gap = 2.0
    for i, step in enumerate(steps):
        x = i * gap
        ax.add_patch(FancyBboxPatch((x - 0.75, -0.35), 1.5, 0.7, boxstyle="round,pad=0.06",
                                    facecolor="#eef3fb", edgecolor="#1f3b64", linewidth=1.2))
        ax.text(x, 0, step.replace(" ", "\n", 1), ha="center", va="center", fontsize=9)
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.82, 0), (x - 0.82, 0), arrowstyle="-|>",
                                         mutation_scale=12, color="#444444"))
    ax.set_xlim(-0.95, (len(steps) - 1) * gap + 0.95)
    ax.set_ylim(-0.55, 0.55)
    ax.set_aspect("equal")
    return fig


# --------------------------------------------------------------------------- evidence


def of(count: Any, total: Any) -> str:
    """``"259 of 300"``: a count with its denominator, as the book prints every count."""
    if count is None:
        return "—"
    if total is None:
        return f"{count:,}" if isinstance(count, int) else str(count)
    return f"{count:,} of {total:,}"


#: The fields of an evidence record and whether each is required.
EVIDENCE_FIELDS = {
    "claim": True,  # one sentence: what the chapter shows
    "invariants": True,  # list of invariant ids, e.g. ["INV_001"]
    "runs": True,  # runs (seeds or schedules) with the guardrail ON in which the invariants were checked
    "violations": True,  # violating runs among those: 0 for a holding claim
    "reached": False,  # of those runs, how many reached the fault under study (None: not counted)
    "negative_control": False,  # violating runs with the guardrail OFF (None: no control)
    "negative_control_runs": False,  # runs explored with the guardrail off (the denominator)
    "fm": False,  # failure-mode id, e.g. "FM_001", for failure-mode chapters
    "guardrail": False,  # the guardrail's name
    "digest": False,  # a digest of one run, so a reader can compare builds
}

#: The numbers the landing page and the failure-mode index publish, and how to say them.
EVIDENCE_NUMBERS = (
    ("violations", "runs", "violating runs, guardrail on"),
    ("reached", "runs", "runs that reached the fault"),
    ("negative_control", "negative_control_runs", "violating runs, guardrail off"),
)


class Evidence:
    """A chapter's recorded results.

    Its text form is JSON, which the book's extension parses (not
    ``_repr_json_``: nbformat only accepts a JSON object under a JSON mime type,
    and glue stores hidden outputs under a prefixed mime type). Displayed in a
    chapter, it is a short summary whose numbers carry ``data-ff-field``
    attributes, so ``make test-site`` can check that the landing page and the
    failure-mode index show the same numbers as the chapter.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __repr__(self) -> str:
        return json.dumps(self.fields, sort_keys=True)

    def _lines(self) -> list[tuple[str, list[tuple[str | None, str]]]]:
        """(label, [(field or None, text), ...]) per line of the summary."""
        f = self.fields
        lines = [("claim", [(None, f["claim"])])]
        on: list[tuple[str | None, str]] = [
            ("violations", f"{f['violations']:,}"), (None, " violating of "),
            ("runs", f"{f['runs']:,}"), (None, " runs")]
        if f.get("reached") is not None:
            on += [(None, "; "), ("reached", f"{f['reached']:,}"),
                   (None, " of them reached the fault under study")]
        lines.append(("guardrail on" + (f" ({f['guardrail']})" if f.get("guardrail") else ""), on))
        if f.get("negative_control") is not None:
            off: list[tuple[str | None, str]] = [("negative_control", f"{f['negative_control']:,}"),
                                                 (None, " violating")]
            if f.get("negative_control_runs") is not None:
                off += [(None, " of "), ("negative_control_runs", f"{f['negative_control_runs']:,}"),
                        (None, " runs")]
            lines.append(("guardrail off (negative control)", off))
        lines.append(("invariants checked", [(None, ", ".join(f["invariants"]))]))
        return lines

    def _repr_html_(self) -> str:
        esc = html.escape
        fm = esc(self.fields.get("fm") or "")
        items = []
        for label, parts in self._lines():
            text = "".join(esc(t) if field is None
                           else f'<span data-ff-field="{field}">{esc(t)}</span>'
                           for field, t in parts)
            items.append(f"<li><strong>{esc(label)}:</strong> {text}</li>")
        return (f'<div class="ff-evidence" data-ff-fm="{fm}"><p class="ff-evidence-title">'
                "Recorded for the landing page and the failure-mode index</p><ul>"
                + "".join(items) + "</ul></div>")

    def _repr_markdown_(self) -> str:
        lines = ["**Recorded for the landing page and the failure-mode index**", ""]
        for label, parts in self._lines():
            lines.append(f"- **{label}:** " + "".join(t for _, t in parts))
        return "\n".join(lines)


_Evidence = Evidence  # the name chapters built before this class was public


def record_evidence(**fields: Any) -> Evidence:
    """Record a chapter's executed results for the landing page and the failure-mode index.

    Call it once per chapter, after the assertions. The record is glued (myst-nb
    ``glue``) under the key ``evidence``; the book's Sphinx extension reads it
    after every chapter has executed and builds the evidence tables from it, so
    no result in those tables is typed by hand. Every count goes with its
    denominator: ``violations`` and ``reached`` of ``runs`` (guardrail on),
    ``negative_control`` of ``negative_control_runs`` (guardrail off). Returns the
    record: as the last line of a ``remove-input`` cell it shows the chapter's
    summary of what it recorded. Outside a kernel with myst-nb (plain Python)
    it only validates the record.
    """
    missing = [k for k, required in EVIDENCE_FIELDS.items() if required and k not in fields]
    unknown = sorted(set(fields) - set(EVIDENCE_FIELDS))
    if missing or unknown:
        raise ValueError(f"evidence: missing fields {missing}, unknown fields {unknown}")
    record = {k: fields.get(k) for k in EVIDENCE_FIELDS}
    record["invariants"] = list(record["invariants"])
    for count, total, _ in EVIDENCE_NUMBERS:
        if record[count] is not None and record[total] is not None:
            assert 0 <= record[count] <= record[total], (count, record[count], total, record[total])
    json.dumps(record)  # must be plain JSON
    evidence = Evidence(record)
    try:
        from myst_nb import glue
    except ImportError:  # the docs group is not installed: nothing to glue into
        return evidence
    glue("evidence", evidence, display=False)
    return evidence


def try_it(*commands: str, note: str | None = None) -> Any:
    """The "Try it yourself" block: shell commands as one copyable ``bash`` code block.

    Glue it with ``glue(key, try_it(...), display=False)`` and show it with the
    block form, which renders a real code block (the inline role would put it
    in a paragraph)::

        ```{glue:md} fm1_commands
        :format: myst
        ```

    Commands are written for a shell in the repository in which
    ``.venv/bin/activate`` was sourced after ``make sync`` (the README's setup);
    the block says so in its first line.
    """
    from IPython.display import Markdown

    width = max(len(c.split("  #")[0].rstrip()) for c in commands)
    lines = ["# in the repository, after: make sync && . .venv/bin/activate"]
    for c in commands:
        code, sep, comment = c.partition("  #")
        lines.append(f"{code.rstrip():<{width}}   #{comment}" if sep else code.rstrip())
    text = "```bash\n" + "\n".join(lines) + "\n```"
    if note:
        text += "\n\n" + note
    return Markdown(text)
