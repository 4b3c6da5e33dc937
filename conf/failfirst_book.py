"""Sphinx extension for the failfirst book.

- Every notebook chapter gets a visible link to download its executed ``.ipynb``.
- ``{evidence-table}`` and ``{failure-mode-index}`` are filled from the results
  that executed chapters recorded with ``failfirst.viz.record_evidence`` (glued
  under the key ``evidence``). They are filled when pages are written, which is
  after every chapter has been read and executed, also under ``-j``: parallel
  reads only happen in the read phase, and myst-nb writes each chapter's glue
  file to the shared ``jupyter_execute`` folder before the write phase starts.
- After reading: one warning per chapter whose execution failed (so ``-W``
  fails the build and the summary names every failing chapter) and per
  evidence record that does not hold; a note per failure-mode bundle that has
  no chapter yet.
- ``failfirst-api`` (inside ``{eval-rst}``) documents every module of a
  package, so a new module appears in the API reference without an edit.
- After writing: a warning for any script, stylesheet, image or font that the
  built site would load from another host.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "failure_modes"
BUNDLE_RE = re.compile(r"^(FM_\d{3})_(\w+)$")


# --------------------------------------------------------------------------- nodes


class generated_table(nodes.General, nodes.Element):
    """Placeholder replaced by a generated table when the page is written."""


def _skip(self: Any, node: nodes.Node) -> None:
    raise nodes.SkipNode


def _track(env: BuildEnvironment) -> set[str]:
    if not hasattr(env, "failfirst_generated"):
        env.failfirst_generated = set()
    return env.failfirst_generated


class EvidenceTable(SphinxDirective):
    """``{evidence-table}``: one row per chapter that recorded evidence."""

    def run(self) -> list[nodes.Node]:
        _track(self.env).add(self.env.docname)
        return [generated_table(kind="evidence")]


class FailureModeIndex(SphinxDirective):
    """``{failure-mode-index}``: one row per bundle under failure_modes/."""

    option_spec = {"bundles": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        _track(self.env).add(self.env.docname)
        # A new or removed bundle must rebuild the page that lists them.
        self.env.note_dependency(str(BUNDLES))
        return [generated_table(kind="failure-modes")]


def purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _track(env).discard(docname)


def merge_info(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: Any) -> None:
    _track(env).update(getattr(other, "failfirst_generated", set()) & docnames)


def always_rewrite(app: Sphinx, env: BuildEnvironment) -> list[str]:
    # Generated pages depend on every chapter's results: with a cached preview
    # build, rewrite them even when only another chapter was re-read.
    return sorted(_track(env))


# --------------------------------------------------------------------------- evidence


def _nb_metadata(env: BuildEnvironment) -> dict[str, dict[str, Any]]:
    """docname -> myst-nb metadata (glue keys, execution result) of every notebook read."""
    from myst_nb.sphinx_ import NbMetadataCollector

    return NbMetadataCollector.get_doc_data(env)


def load_evidence(env: BuildEnvironment) -> dict[str, dict[str, Any]]:
    """docname -> evidence record, read from the executed chapters' glue files."""
    folder = Path(env.mystnb_config.output_folder)
    records = {}
    for docname, meta in sorted(_nb_metadata(env).items()):
        if docname not in env.all_docs or "evidence" not in meta.get("glue", []):
            continue
        path = folder.joinpath(*docname.split("/")).with_name(docname.split("/")[-1] + ".glue.json")
        data = json.loads(path.read_text(encoding="utf-8"))["evidence"]["data"]
        try:  # record_evidence glues an object whose text form is a JSON object
            record = json.loads(data.get("text/plain", ""))
        except ValueError:
            record = None
        if not isinstance(record, dict):
            logger.warning("evidence in %s is not a JSON object (use record_evidence)", docname,
                           location=docname)
            continue
        records[docname] = record
    return records


def verdict(record: dict[str, Any]) -> str:
    if record.get("violations"):
        return "violated"
    if record.get("negative_control") == 0:
        return "vacuous"  # the guardrail-off run found nothing: the proof proves nothing
    if not record.get("runs"):
        return "unchecked"
    return "holds"


def bundles() -> list[dict[str, str]]:
    """The failure-mode bundles on disk: id, folder name, and the spec's first heading."""
    found = []
    for path in sorted(BUNDLES.iterdir()) if BUNDLES.is_dir() else []:
        m = BUNDLE_RE.match(path.name)
        if not m or not path.is_dir():
            continue
        spec = path / "spec.md"
        title = ""
        if spec.is_file():
            for line in spec.read_text(encoding="utf-8").splitlines():
                if line.startswith("# "):
                    title = line[2:].strip()
                    break
        found.append({"fm": m.group(1), "folder": path.name, "title": title,
                      "spec": str(spec.relative_to(REPO)) if spec.is_file() else ""})
    return found


def check_after_read(app: Sphinx, env: BuildEnvironment) -> None:
    """Warnings (errors under -W) for everything the gate must refuse."""
    from myst_nb.sphinx_ import NbMetadataCollector

    failed = []
    for docname, meta in sorted(_nb_metadata(env).items()):
        exec_data = meta.get("exec_data") or {}
        if exec_data and not exec_data.get("succeeded", True):
            failed.append(docname)
    for docname in failed:
        logger.warning("chapter %s failed to execute: %s (cell and traceback above; also in "
                       "%s/reports/%s.err.log)", docname,
                       NbMetadataCollector.get_exec_data(env, docname).get("error"),
                       os.path.relpath(app.outdir), docname, location=docname)

    records = load_evidence(env)
    for docname, record in records.items():
        v = verdict(record)
        if v != "holds":
            logger.warning("evidence of %s: %s (%s)", docname, v, json.dumps(record),
                           location=docname)
    # A bundle may land before its chapter: the index says "no chapter yet", and
    # the log says so here, but that alone does not fail the gate.
    chaptered = {r.get("fm") for r in records.values()}
    for b in bundles():
        if b["fm"] not in chaptered and not failed:
            logger.info("note: failure mode %s (failure_modes/%s) has no chapter recording "
                        "evidence with fm=%r yet", b["fm"], b["folder"], b["fm"])


# --------------------------------------------------------------------------- tables


def _table(columns: list[str], rows: list[list[nodes.Node | str]],
           widths: list[int] | None = None) -> nodes.table:
    """A docutils table; ``widths`` are relative column widths."""
    table = nodes.table(classes=["ff-generated"] + (["colwidths-given"] if widths else []))
    group = nodes.tgroup(cols=len(columns))
    table += group
    group.extend(nodes.colspec(colwidth=w) for w in widths or [1] * len(columns))
    head = nodes.thead()
    group += head
    head += _row(columns)
    body = nodes.tbody()
    group += body
    body.extend(_row(r) for r in rows)
    return table


def _row(cells: list[nodes.Node | str]) -> nodes.row:
    row = nodes.row()
    for c in cells:
        entry = nodes.entry()
        para = nodes.paragraph()
        para += c if isinstance(c, nodes.Node) else nodes.Text(str(c))
        entry += para
        row += entry
    return row


def _link(app: Sphinx, fromdoc: str, todoc: str) -> nodes.Node:
    title = app.env.titles[todoc].astext() if todoc in app.env.titles else todoc
    uri = app.builder.get_relative_uri(fromdoc, todoc)
    return nodes.reference("", title, internal=True, refuri=uri)


def _n(v: Any) -> str:
    return "—" if v is None else str(v)


def fill_tables(app: Sphinx, doctree: nodes.document, fromdoc: str) -> None:
    placeholders = list(doctree.findall(generated_table))
    if not placeholders:
        return
    records = load_evidence(app.env)
    for node in placeholders:
        if node["kind"] == "evidence":
            rows = [
                [_link(app, fromdoc, doc), r["claim"], ", ".join(r["invariants"]), _n(r["runs"]),
                 _n(r["violations"]), _n(r.get("negative_control")), verdict(r)]
                for doc, r in records.items()
            ]
            cols = ["chapter", "claim", "invariants", "runs checked", "violations",
                    "violations, guardrail off", "verdict"]
            widths = [16, 30, 12, 10, 10, 12, 10]
        else:
            by_fm = {r["fm"]: (doc, r) for doc, r in records.items() if r.get("fm")}
            rows = []
            for b in bundles():
                doc, r = by_fm.get(b["fm"], (None, {}))
                # "FM_001 — Retry duplication: ..." -> "Retry duplication: ..."
                title = re.sub(r"^FM_\d{3}\s*[—:-]*\s*", "", b["title"]) or b["folder"]
                name: nodes.Node | str = title
                if doc:
                    uri = app.builder.get_relative_uri(fromdoc, doc)
                    name = nodes.reference("", title, internal=True, refuri=uri)
                else:
                    name = f"{title} (no chapter yet)"
                rows.append([
                    b["fm"], name, ", ".join(r.get("invariants", [])) or "—",
                    _n(r.get("guardrail")), _n(r.get("negative_control")), _n(r.get("runs")),
                    _n(r.get("violations")), verdict(r) if r else "—",
                ])
            cols = ["id", "failure mode (chapter)", "invariants", "guardrail",
                    "violations, guardrail off", "runs, guardrail on", "violations", "verdict"]
            widths = [8, 30, 10, 16, 10, 10, 8, 8]
        if rows:
            node.replace_self(_table(cols, rows, widths))
        else:
            node.replace_self(nodes.paragraph(text="No executed chapter has recorded results."))


# --------------------------------------------------------------------------- downloads


def add_download_link(app: Sphinx, doctree: nodes.document) -> None:
    """Put a link to the executed notebook under the title of every notebook page.

    Runs before Sphinx's download collector (priority < 500), which then copies
    the file into ``_downloads/`` like any ``{download}`` target. First it
    renumbers the notebook's cell ids: the MyST reader draws them at random,
    and the published notebook should be the same at every build.
    """
    env = app.env
    if "kernelspec" not in env.metadata.get(env.docname, {}):
        return  # a plain MyST page: nothing was executed
    name = env.docname.split("/")[-1] + ".ipynb"
    path = Path(env.mystnb_config.output_folder).joinpath(*env.docname.split("/")[:-1], name)
    if path.is_file():
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb.get("cells", [])):
            cell["id"] = f"cell-{i}"
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    ref = addnodes.download_reference(
        "", "", reftarget="/" + os.path.relpath(path, app.srcdir), refdoc=env.docname,
        refexplicit=True, reftype="download", refdomain="",
    )
    ref += nodes.literal("", name, classes=["xref", "download"])
    para = nodes.paragraph("", "", classes=["ff-nb-download"])
    para += nodes.Text("Run this page yourself: download it as an executed notebook, ")
    para += ref
    para += nodes.Text(".")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, para)
    else:
        doctree.insert(0, para)


# --------------------------------------------------------------------------- autodoc


class ApiModules(SphinxDirective):
    """``.. failfirst-api:: PACKAGE``: a section with ``automodule`` per public module.

    The reStructuredText is inserted into the input like an ``include``, so
    the sections are real sections (in the page's table of contents). Use it
    inside an ``{eval-rst}`` block: autodoc emits reStructuredText.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = importlib.import_module(self.arguments[0])
        self.env.note_dependency(package.__path__[0])  # a new module: re-read the page
        lines: list[str] = []
        # Subpackages too (the store is one): walk_packages names every module once.
        for mod in sorted(pkgutil.walk_packages(package.__path__, f"{package.__name__}."),
                          key=lambda m: m.name):
            if any(part.startswith("_") for part in mod.name.split(".")):
                continue
            lines += [mod.name, "-" * len(mod.name), "", f".. automodule:: {mod.name}", ""]
        self.state_machine.insert_input(lines, self.get_source_info()[0])
        return []


def skip_generated_init(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                        options: Any) -> bool | None:
    """Document ``__init__`` only where it was written by hand, with a docstring.

    A dataclass's generated ``__init__`` has no docstring of its own (autodoc
    would borrow ``object.__init__``'s), and its string annotations cannot be
    resolved in nitpicky mode; the fields are documented as attributes instead.
    """
    if name == "__init__" and not getattr(obj, "__doc__", None):
        return True
    return None


def drop_generated_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any,
                             lines: list[str]) -> None:
    """Hide the docstring that @dataclass invents for an undocumented class.

    It repeats the signature with the reprs of the defaults, which can hold
    memory addresses (``<function <lambda> at 0x7f...>``): the page would
    change at every build and say nothing the fields do not say.
    """
    import dataclasses

    if what == "class" and dataclasses.is_dataclass(obj) and "__doc__" in vars(obj):
        if (obj.__doc__ or "").startswith(obj.__name__ + "("):
            lines[:] = []


# --------------------------------------------------------------------------- offline check

# A tag that makes the browser fetch from another host (links <a href> are fine).
_REMOTE = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(src|href|data)="
    r"[\"']((?:https?:)?//[^\"']+)", re.I)
_REMOTE_CSS = re.compile(r"(@import\s+(?:url\()?|url\()\s*[\"']?((?:https?:)?//[^\"')]+)", re.I)


def check_offline(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits = [m.group(3) for m in _REMOTE.finditer(text)] if path.suffix == ".html" else []
        if path.suffix in (".css", ".html"):
            hits += [m.group(2) for m in _REMOTE_CSS.finditer(text)]
        for url in sorted(set(hits)):
            logger.warning("%s loads %s from another host: the site must be self-contained",
                           path.relative_to(out), url)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(generated_table, html=(_skip, None), latex=(_skip, None), text=(_skip, None))
    app.add_directive("evidence-table", EvidenceTable)
    app.add_directive("failure-mode-index", FailureModeIndex)
    app.add_directive("failfirst-api", ApiModules)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-merge-info", merge_info)
    app.connect("env-get-updated", always_rewrite)
    app.connect("env-updated", check_after_read)
    app.connect("doctree-read", add_download_link, priority=400)
    app.connect("doctree-resolved", fill_tables)
    app.connect("build-finished", check_offline)
    app.connect("autodoc-skip-member", skip_generated_init)
    app.connect("autodoc-process-docstring", drop_generated_docstring)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
