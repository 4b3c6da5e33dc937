"""Figures of histories, rates and the state machine, as deterministic inline SVG.

matplotlib is only in the ``docs`` dependency group. Figures are built with
``matplotlib.figure.Figure`` directly, never through ``pyplot``: no backend is
selected, nothing is shown twice by the notebook's inline backend, and no
``matplotlib.use("Agg")`` is needed in scripts or kernels. The same figure gives
the same SVG bytes, so an executed chapter does not change between builds.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "OUTCOME_COLOURS",
    "loop_diagram",
    "outcome_grid",
    "per_second",
    "rate_figure",
    "state_diagram",
    "svg",
    "timeline",
]


# A fixed palette (matplotlib's tab10) so colours never depend on global state.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)



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




# --------------------------------------------------------------------------- the peers matrix

#: Each outcome's colour in :func:`outcome_grid`: the worst category a cell showed.
OUTCOME_COLOURS = {
    "completed": "#2ca02c", "duplicated": "#ff7f0e", "lost": "#d62728", "failed": "#9467bd",
    "stuck": "#8c564b", "n/a": "#ffffff", "not measured": "#dddddd",
}


def outcome_grid(rows: Sequence[str], columns: Sequence[str],
                 cells: Sequence[Sequence[str]], *, font_pt: float = 11) -> Any:
    """A grid, ``rows`` down and ``columns`` across, each cell coloured and labelled with
    its outcome (a key of :data:`failfirst_book.figures.OUTCOME_COLOURS`); every label at
    ``font_pt`` points or more. Returns the Figure."""
    from matplotlib.patches import Patch, Rectangle

    assert font_pt >= 11, "the book's figures are readable: 11 pt or more"
    fig, ax = _new_figure(2.0 + 1.9 * len(columns), 0.9 + 0.42 * len(rows))
    for y, line in enumerate(cells):
        for x, outcome in enumerate(line):
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=OUTCOME_COLOURS[outcome],
                                   edgecolor="#888888", linewidth=0.6))
            dark = outcome in ("duplicated", "lost", "failed", "stuck", "completed")
            ax.text(x + 0.5, y + 0.5, outcome, ha="center", va="center", fontsize=font_pt,
                    color="white" if dark else "#444444")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([i + 0.5 for i in range(len(columns))], list(columns), fontsize=font_pt)
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(rows))], list(rows), fontsize=font_pt)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    shown = [k for k in OUTCOME_COLOURS if any(k in line for line in cells)]
    ax.legend(handles=[Patch(facecolor=OUTCOME_COLOURS[k], edgecolor="#888888", label=k) for k in shown],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(shown) or 1,
              frameon=False, fontsize=font_pt)
    return fig
