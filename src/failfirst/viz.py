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
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Table",
    "loop_diagram",
    "record_evidence",
    "state_diagram",
    "svg",
    "timeline",
    "trace_table",
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
        out = ['<table class="ff-table">']
        if self.caption:
            out.append(f"<caption>{esc(self.caption)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in self.columns))
        out.append("</tr></thead><tbody>")
        for row, hot in zip(self.rows, self.highlight, strict=True):
            cls = ' class="ff-hot"' if hot else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>")
        out.append("</tbody></table>")
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
    from IPython.display import SVG  # only ever called inside a kernel
    import matplotlib

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
    "refused": ("o", "#bbbbbb", "refused"),
    "crash": ("X", "#d62728", "crash"),
    "pause": ("|", "#9467bd", "pause"),
    "expire": ("D", "#ff7f0e", "expire"),
    "expire_dead": ("D", "#8c564b", "expire (dead)"),
    "complete": ("^", "#1f77b4", "complete"),
    "recover": ("*", "#17becf", "recover"),
}


def timeline(
    events: Sequence[Mapping[str, Any]],
    ax: Any = None,
    *,
    x: str = "t",
    title: str | None = None,
) -> Any:
    """Draw a history as lanes: one lane per actor, leases as bars, markers for events.

    A lease is a bar in its holder's lane from ``claim`` until the holder ends it
    (complete, retry, dead, fail), the reaper takes it back (expire), or the
    holder crashes. A lease still open at the end is drawn with a dashed edge.
    Markers show effects, crashes, pauses, expiries and completions. ``x`` is the
    event field used as the horizontal axis: ``"t"`` (simulated seconds) or
    ``"seq"`` (event order, useful when many events share a time). Returns the
    Figure; pass ``ax`` to draw into an existing Axes.
    """
    if ax is None:
        n_actors = len({e["actor"] for e in events}) or 1
        fig, ax = _new_figure(9.0, 0.9 + 0.55 * n_actors)
    else:
        fig = ax.figure

    actors: list[str] = list(dict.fromkeys(e["actor"] for e in events))
    lane = {a: i for i, a in enumerate(actors)}
    jobs: list[Any] = list(dict.fromkeys(e["job"] for e in events if e.get("job") is not None))
    colour = {j: _PALETTE[i % len(_PALETTE)] for i, j in enumerate(jobs)}
    xs = [float(e[x]) for e in events] or [0.0]
    x_end = max(xs)
    min_width = max((x_end - min(xs)) / 200.0, 1e-9)  # keep instant leases visible

    open_leases: dict[Any, tuple[str, float, Any]] = {}  # job -> (holder, start, token)
    bars: list[tuple[str, float, float, Any, Any, bool]] = []

    def close(job: Any, end: float) -> None:
        holder, start, token = open_leases.pop(job)
        bars.append((holder, start, end, job, token, False))

    for e in events:
        kind, job, at = e["kind"], e.get("job"), float(e[x])
        if kind == "claim" and job is not None:
            if job in open_leases:  # a new lease implies the old one ended unseen
                close(job, at)
            open_leases[job] = (e["actor"], at, e.get("token"))
        elif kind in _HOLDER_ENDS and job in open_leases:
            close(job, at)
        elif kind in _REAPER_ENDS and job in open_leases:
            close(job, at)
        elif kind == "crash":
            for held in [j for j, (h, _, _) in open_leases.items() if h == e["actor"]]:
                close(held, at)
    for job, (holder, start, token) in list(open_leases.items()):
        bars.append((holder, start, x_end, job, token, True))

    for holder, start, end, job, token, unfinished in bars:
        width = max(end - start, min_width)
        ax.barh(
            lane[holder], width, left=start, height=0.5, color=colour[job], alpha=0.35,
            edgecolor=colour[job], linestyle="--" if unfinished else "-", linewidth=1.0,
        )
        label = f"j{job}" + (f"·t{token}" if token is not None else "")
        ax.text(start + width / 2, lane[holder], label, ha="center", va="center", fontsize=7)

    seen_labels: set[str] = set()
    for e in events:
        style = _MARKERS.get(e["kind"])
        if style is None:
            continue
        marker, col, label = style
        # An expiry is drawn in the lane of the lease it ends, not the reaper's.
        ax.scatter(
            [float(e[x])], [lane[e["actor"]] + 0.32], marker=marker, color=col, s=28, zorder=3,
            label=None if label in seen_labels else label,
        )
        seen_labels.add(label)

    ax.set_yticks(range(len(actors)), actors)
    ax.set_ylim(len(actors) - 0.4, -0.6)
    ax.set_xlabel("simulated seconds" if x == "t" else "event sequence")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if seen_labels:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
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
    col_gap, row_gap, box_w, box_h = 5.4, 2.4, 2.1, 0.75
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


class _Evidence:
    """A chapter's results. Its text form is JSON, which the book's extension parses.

    (Not ``_repr_json_``: nbformat only accepts a JSON object under a JSON mime
    type, and glue stores hidden outputs under a prefixed mime type.)
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def __repr__(self) -> str:
        return json.dumps(self.fields, sort_keys=True)


#: The fields of an evidence record and whether each is required.
EVIDENCE_FIELDS = {
    "claim": True,  # one sentence: what the chapter shows
    "invariants": True,  # list of invariant ids, e.g. ["INV_001"]
    "runs": True,  # runs (seeds or schedules) in which the invariants were checked
    "violations": True,  # violations found in those runs: 0 for a holding claim
    "negative_control": False,  # violating runs with the guardrail off (None: no control)
    "fm": False,  # failure-mode id, e.g. "FM_001", for failure-mode chapters
    "guardrail": False,  # the guardrail's name
    "digest": False,  # a digest of one run, so a reader can compare builds
}


def record_evidence(**fields: Any) -> None:
    """Record a chapter's executed results for the landing page and the failure-mode index.

    Call it once per chapter, after the assertions. The record is glued (myst-nb
    ``glue``) under the key ``evidence``; the book's Sphinx extension reads it
    after every chapter has executed and builds the evidence tables from it, so
    no result in those tables is typed by hand. Outside a kernel with myst-nb
    (plain Python) it only validates the record.
    """
    missing = [k for k, required in EVIDENCE_FIELDS.items() if required and k not in fields]
    unknown = sorted(set(fields) - set(EVIDENCE_FIELDS))
    if missing or unknown:
        raise ValueError(f"evidence: missing fields {missing}, unknown fields {unknown}")
    record = {k: fields.get(k) for k in EVIDENCE_FIELDS}
    record["invariants"] = list(record["invariants"])
    json.dumps(record)  # must be plain JSON
    try:
        from myst_nb import glue
    except ImportError:  # the docs group is not installed: nothing to glue into
        return
    glue("evidence", _Evidence(record), display=False)
