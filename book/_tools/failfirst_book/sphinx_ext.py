"""Sphinx extension for the failfirst book.

- Every notebook chapter gets a visible link to download its executed ``.ipynb``.
- ``{evidence-table}`` and ``{failure-mode-index}`` are filled from the results
  that executed chapters recorded with ``failfirst_book.evidence.record_evidence`` (glued
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

REPO = Path(__file__).resolve().parents[3]
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


class Catalogue(SphinxDirective):
    """``{catalogue}``: the failure modes at a glance, one row per bundle."""

    def run(self) -> list[nodes.Node]:
        _track(self.env).add(self.env.docname)
        self.env.note_dependency(str(BUNDLES))
        return [generated_table(kind="catalogue")]


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
    if record.get("reached") == 0:
        return "vacuous"  # no run reached the fault: nothing was tested
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
    # A bundle's folder, spec, scenario and chapter must agree (a copied spec or chapter
    # would make the index name one failure mode for another): each disagreement fails.
    from failfirst.sim import catalogue

    for problem in catalogue.bundle_problems(BUNDLES, REPO / "book"):
        logger.warning("failure-mode bundle: %s", problem)
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


def _row(cells: list[nodes.Node | str | list[nodes.Node]]) -> nodes.row:
    row = nodes.row()
    for c in cells:
        entry = nodes.entry()
        para = nodes.paragraph()
        if isinstance(c, list):
            para.extend(c)
        else:
            para += c if isinstance(c, nodes.Node) else nodes.Text(str(c))
        entry += para
        row += entry
    return row


def _link(app: Sphinx, fromdoc: str, todoc: str) -> nodes.Node:
    title = app.env.titles[todoc].astext() if todoc in app.env.titles else todoc
    uri = app.builder.get_relative_uri(fromdoc, todoc)
    return nodes.reference("", title, internal=True, refuri=uri)


def _n(v: Any) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _of(record: dict[str, Any], count: str, total: str) -> str:
    """``"259 of 300"``: every published count with its denominator."""
    c, t = record.get(count), record.get(total)
    if c is None:
        return "—"
    return f"{c:,} of {t:,}" if t is not None else f"{c:,}"


def _fm_title(b: dict[str, str]) -> str:
    # "FM_001 — Retry duplication: ..." -> "Retry duplication: ..."
    return re.sub(r"^FM_\d{3}\s*[—:-]*\s*", "", b["title"]) or b["folder"]


Part = tuple[str, "str | None", "str | None"]  # (text, link docname, evidence field)


def _guardrail_on(r: dict[str, Any]) -> list[Part]:
    """The proof's counts in one cell: ``0 of 2,621 violating, 2,620 of 2,621 reached the
    fault`` (each count with its denominator)."""
    if r.get("violations") is None:
        return [("—", None, None)]
    parts: list[Part] = [(_of(r, "violations", "runs"), None, "violations"), (" violating", None, None)]
    if r.get("reached") is not None:
        parts += [(", ", None, None), (_of(r, "reached", "runs"), None, "reached"),
                  (" reached the fault", None, None)]
    return parts


def _guardrail_off(r: dict[str, Any]) -> list[Part]:
    """The negative control in one cell: ``1 of 8 violating`` (or a dash: no control)."""
    if r.get("negative_control") is None:
        return [("—", None, None)]
    return [(_of(r, "negative_control", "negative_control_runs"), None, "negative_control"),
            (" violating", None, None)]


def evidence_rows(records: dict[str, dict[str, Any]], kind: str
                  ) -> tuple[list[str], list[list[list[Part]]]]:
    """The generated table as data: columns, and rows of cells, each a list of parts
    (text, link docname, evidence field).

    One description serves the HTML page (docutils nodes) and the downloadable
    notebook (Markdown), so both show the same numbers. Few columns, so that headers
    stay on one line: each count carries its denominator in its cell.
    """
    rows: list[list[list[Part]]] = []
    if kind == "evidence":
        cols = ["chapter", "claim", "guardrail on", "guardrail off (control)", "verdict"]
        for doc, r in records.items():
            claim = f"{r['claim']} ({', '.join(r['invariants'])})" if r["invariants"] else r["claim"]
            rows.append([[(doc, doc, None)], [(claim, None, None)], _guardrail_on(r),
                         _guardrail_off(r), [(verdict(r), None, None)]])
        return cols, rows
    by_fm = {r["fm"]: (doc, r) for doc, r in records.items() if r.get("fm")}
    if kind == "catalogue":
        cols = ["failure mode", "what goes wrong", "guardrail", "proved"]
        for b in bundles():
            doc, r = by_fm.get(b["fm"], (None, {}))
            name, _, what = _fm_title(b).partition(":")
            rows.append([[(f"{b['fm']} {name.strip()}", doc, None)], [(what.strip() or "—", None, None)],
                         [(_guardrails(b["fm"]), None, None)],
                         [({"holds": "yes"}.get(verdict(r), verdict(r)) if r else "no chapter yet",
                           None, None)]])
        return cols, rows
    cols = ["failure mode", "invariants", "guardrail", "guardrail on", "guardrail off (control)",
            "verdict"]
    for b in bundles():
        doc, r = by_fm.get(b["fm"], (None, {}))
        title = _fm_title(b) if doc else f"{_fm_title(b)} (no chapter yet)"
        rows.append([[(f"{b['fm']} {title}", doc, None)],
                     [(", ".join(r.get("invariants", [])) or "—", None, None)],
                     [(_guardrails(b["fm"]), None, None)],
                     _guardrail_on(r) if r else [("—", None, None)],
                     _guardrail_off(r) if r else [("—", None, None)],
                     [(verdict(r) if r else "—", None, None)]])
    return cols, rows


def _guardrails(fm: str) -> str:
    """Every guardrail ``--guard off`` switches for ``fm``, from its scenario: the one
    source ``failfirst list`` and the chapters' evidence records use too."""
    from failfirst.sim import catalogue

    try:
        return catalogue.guardrails_text(catalogue.load(fm)).replace("_", " ")
    except catalogue.UnknownFailureMode:
        return "—"


def evidence_markdown(app: Sphinx, kind: str) -> str:
    """The generated table as Markdown, for the downloadable notebook of the page."""
    cols, rows = evidence_rows(load_evidence(app.env), kind)
    if not rows:
        return "No executed chapter has recorded results."

    def cell(text: str, doc: str | None) -> str:
        if doc:
            label = app.env.titles[doc].astext() if doc == text and doc in app.env.titles else text
            text = f"[{label}]({doc}.ipynb)"
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("".join(cell(t, d) for t, d, _ in parts) for parts in row) + " |"
              for row in rows]
    return "\n".join(lines)


def fill_tables(app: Sphinx, doctree: nodes.document, fromdoc: str) -> None:
    placeholders = list(doctree.findall(generated_table))
    if not placeholders:
        return
    records = load_evidence(app.env)
    for node in placeholders:
        kind = node["kind"]
        cols, rows = evidence_rows(records, kind)
        # The failure mode each row publishes numbers for (the site check matches them).
        fms = [(records.get(row[0][0][1] or "", {}).get("fm") or row[0][0][0].split()[0])
               for row in rows]
        cells: list[list[nodes.Node | str]] = []
        for fm, row in zip(fms, rows, strict=True):
            out: list[nodes.Node | str] = []
            for parts in row:
                cell: list[nodes.Node] = []
                for text, doc, field in parts:
                    if doc:
                        if doc == text:
                            cell.append(_link(app, fromdoc, doc))
                        else:
                            uri = app.builder.get_relative_uri(fromdoc, doc)
                            cell.append(nodes.reference("", text, internal=True, refuri=uri))
                    elif field:  # a published number: the site check compares it with its chapter
                        # Classes, not data- attributes: the HTML writer keeps only classes.
                        cell.append(nodes.inline(text, text, classes=[
                            "ff-num", f"ff-fm-{fm}", f"ff-field-{field}"]))
                    else:
                        cell.append(nodes.Text(text))
                out.append(cell)
            cells.append(out)
        widths = {"evidence": [16, 34, 26, 16, 8], "catalogue": [22, 44, 24, 10]}.get(
            kind, [26, 10, 16, 24, 16, 8])
        if rows:
            node.replace_self(_table(cols, cells, widths))
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
    # What readers try first, and what they get: the .md source through jupytext keeps
    # MyST roles unrendered ({glue:text}, {include}); this notebook has them filled in.
    para += nodes.Text(", and run it in the project's environment with ")
    para += nodes.literal("", f"jupyter execute {name}")
    para += nodes.Text(" or in JupyterLab (")
    para += nodes.literal("", "make lab")
    para += nodes.Text("). Converting the page's .md source with jupytext yourself gives a "
                       "notebook whose text still holds MyST roles; ")
    para += nodes.literal("", "make notebooks")
    para += nodes.Text(" writes clean ones for every chapter.")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, para)
    else:
        doctree.insert(0, para)


def render_notebooks(app: Sphinx, env: BuildEnvironment) -> None:
    """Make every executed notebook read as its page does (:mod:`failfirst_book.nbexport`).

    Runs after every chapter was read and executed (so the evidence tables are
    complete) and before the HTML builder copies the notebooks to ``_downloads/``.
    """
    from failfirst_book import nbexport

    folder = Path(env.mystnb_config.output_folder)
    blocks = {"evidence-table": evidence_markdown(app, "evidence"),
              "catalogue": evidence_markdown(app, "catalogue"),
              "failure-mode-index": evidence_markdown(app, "failure-modes")}

    def title(target: str) -> str:
        doc = target.lstrip("/")
        return env.titles[doc].astext() if doc in env.titles else doc

    for docname in sorted(_nb_metadata(env)):
        if docname not in env.all_docs:
            continue
        parts = docname.split("/")
        path = folder.joinpath(*parts[:-1], parts[-1] + ".ipynb")
        if not path.is_file():
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        glue = nbexport.read_glue_file(path.with_name(parts[-1] + ".glue.json"))
        source_dir = Path(env.doc2path(docname)).parent
        try:
            nbexport.render(nb, source_dir, glue=glue, blocks=blocks, doc_title=title)
        except (KeyError, OSError, ValueError) as exc:
            logger.warning("notebook of %s: %s", docname, exc, location=docname)
            continue
        left = nbexport.raw_syntax(nb)
        if left:
            logger.warning("notebook of %s keeps raw MyST: %s", docname, "; ".join(left[:5]),
                           location=docname)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- autodoc


class ApiModules(SphinxDirective):
    """``.. failfirst-api:: PACKAGE``: a section with ``automodule`` per public module.

    Subpackages come in the order the package's ``LAYERS`` names them (the order of
    its layers, lowest first), else alphabetically; ``:modules:`` limits the page to
    the modules named. The reStructuredText is inserted into the input like an
    ``include``, so the sections are real sections (in the page's table of contents).
    Use it inside an ``{eval-rst}`` block: autodoc emits reStructuredText.
    """

    required_arguments = 1
    option_spec = {"modules": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        package = importlib.import_module(self.arguments[0])
        self.env.note_dependency(package.__path__[0])  # a new module: re-read the page
        layers = list(getattr(package, "LAYERS", ()))
        only = self.options.get("modules", "").split()

        def order(name: str) -> tuple[int, str]:
            top = name.split(".")[1]
            return (layers.index(top) if top in layers else len(layers), name)

        names = sorted((m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")),
                       key=order)
        lines: list[str] = []
        # Subpackages too: walk_packages names every module once.
        for name in names:
            if any(part.startswith("_") for part in name.split(".")):
                continue
            if only and name.split(".", 1)[1] not in only:
                continue
            lines += [name, "-" * len(name), "", f".. automodule:: {name}", ""]
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


# --------------------------------------------------------------------------- source


# A paragraph that is only a {glue:md} role: the glued Markdown is a block (a
# "Try it yourself" code block), which the inline role would flatten into the
# paragraph, a literal "bash" first. Written as the block directive instead.
_GLUE_MD_ALONE = re.compile(r"^\{glue:md\}`([\w:.-]+)`[ \t]*$", re.M)


def glue_md_blocks(app: Sphinx, docname: str, source: list[str]) -> None:
    """``source-read``: a line that is only ``{glue:md}`key``` becomes the block form."""
    source[0] = _GLUE_MD_ALONE.sub(lambda m: f"```{{glue:md}} {m.group(1)}\n:format: myst\n```",
                                   source[0])


# --------------------------------------------------------------------------- a quiet log


def quiet_build() -> None:
    """Settings that keep the build log to progress and results.

    - Kernels: jupyter_client starts a kernel over plain TCP unless asked to
      provision CurveZMQ keys, and ipykernel then warns once per chapter that
      it runs without encryption. ``transport_encryption = "auto"`` provisions
      the keys whenever the kernelspec declares support (ipykernel's does).
      myst-nb builds its kernel manager without a traitlets config we could
      pass, so the setting goes on the trait's default.
    - accessible-pygments (a furo dependency) calls ``logging.basicConfig(level=INFO)``
      on import, which makes every library's INFO records print (traitlets'
      "Executing notebook with kernel"). Import it first, then put the root
      logger back to Python's default level, WARNING.
    - myst-parser and myst-nb log their whole configuration at INFO; their own
      warnings still pass.
    """
    import logging

    from jupyter_client.manager import KernelManager

    KernelManager.class_traits()["transport_encryption"].default_value = "auto"
    try:
        import a11y_pygments  # noqa: F401  (its basicConfig runs now, once)
    except ImportError:
        pass
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("myst_parser.sphinx_ext.main", "myst_nb.sphinx_ext"):
        logging.getLogger("sphinx." + name).setLevel(logging.WARNING)


def setup(app: Sphinx) -> dict[str, Any]:
    quiet_build()
    app.add_node(generated_table, html=(_skip, None), latex=(_skip, None), text=(_skip, None))
    app.add_directive("evidence-table", EvidenceTable)
    app.add_directive("failure-mode-index", FailureModeIndex)
    app.add_directive("catalogue", Catalogue)
    app.add_directive("failfirst-api", ApiModules)
    app.connect("source-read", glue_md_blocks)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-merge-info", merge_info)
    app.connect("env-get-updated", always_rewrite)
    app.connect("env-updated", check_after_read)
    app.connect("env-updated", render_notebooks)
    app.connect("doctree-read", add_download_link, priority=400)
    app.connect("doctree-resolved", fill_tables)
    app.connect("build-finished", check_offline)
    app.connect("autodoc-skip-member", skip_generated_init)
    app.connect("autodoc-process-docstring", drop_generated_docstring)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
