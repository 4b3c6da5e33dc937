"""What a chapter records of its results (the landing page's evidence table and the
failure-mode index are built from these records), its "Try it yourself" block, and
where the build's result files are.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = [
    "EVIDENCE_FIELDS",
    "EVIDENCE_NUMBERS",
    "Evidence",
    "build_path",
    "of",
    "record_evidence",
    "try_it",
]



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
    "guardrail": False,  # the guardrails' names; for a failure mode, filled from its scenario
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
    if record["fm"] is not None:  # a failure mode's guardrails come from its scenario, only
        from failfirst.sim import catalogue

        guardrails = catalogue.guardrails_text(catalogue.load(record["fm"]))
        if record["guardrail"] not in (None, guardrails):
            raise ValueError(f"evidence: guardrail {record['guardrail']!r} is not {record['fm']}'s "
                             f"({guardrails}); leave it out, it comes from the scenario")
        record["guardrail"] = guardrails
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
