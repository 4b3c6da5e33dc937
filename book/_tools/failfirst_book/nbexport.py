"""A chapter's executed notebook, made to read as its page does.

A MyST chapter's Markdown cells hold syntax that only Sphinx understands:
``{glue:text}`key``` roles whose values the kernel computed, ``{include}`` and
``{literalinclude}`` blocks that pull in a bundle's spec or the guardrail's
source, ``{doc}``/``{term}``/``{py:func}`` cross-references. In Jupyter they
show as raw text, so the downloaded notebook would miss its numbers and its
guardrail code. :func:`render` rewrites every Markdown cell into plain
Markdown:

- glue roles and ``{glue:md}`` blocks become their values (from the executed
  notebook's outputs, or from the glue file myst-nb wrote);
- ``{include}`` becomes the included text, ``{literalinclude}`` a fenced code
  block (``:pyobject:``, ``:start-after:``, ``:end-before:``, ``:lines:``, ``:dedent:`` honoured,
  read by Sphinx's own ``LiteralIncludeReader``);
- cross-references become their text (``{doc}`` a link to the chapter's notebook);
- admonitions become block quotes; directives that only make sense on the site
  (toctree, generated tables) become a sentence pointing at the site, or the
  Markdown given for them.

Code cells are left as they are, so the notebook still runs. Used by the Sphinx
extension (the ``.ipynb`` each page offers) and by ``make notebooks``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

GLUE_PREFIX = "application/papermill.record/"

# ```{name} argument      or      :::{name} argument
_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:.-]+)\}\s*(?P<arg>.*)$")
# {role}`content`   (roles with a domain: {py:func}, {glue:text}, ...), or an inline code
# span, which is left alone: at each position the role is tried first.
_ROLE = re.compile(r"\{(?P<name>[a-zA-Z][\w:.-]*)\}`(?P<content>[^`]+)`|(?P<code>(?P<ticks>`+).+?(?P=ticks))")
_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_ADMONITIONS = {"note", "tip", "important", "warning", "caution", "attention", "danger",
                "error", "hint", "seealso", "admonition"}


def glue_values(nb: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """key -> mime bundle of every ``glue`` call in an executed notebook's outputs."""
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("scrapbook")
            if not meta or "name" not in meta:
                continue
            prefix = meta.get("mime_prefix", GLUE_PREFIX)
            found[meta["name"]] = {k[len(prefix):] if k.startswith(prefix) else k: v
                                   for k, v in (out.get("data") or {}).items()}
    return found


def read_glue_file(path: Path) -> dict[str, dict[str, Any]]:
    """key -> mime bundle from a ``<doc>.glue.json`` file that myst-nb writes."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v.get("data", {}) for k, v in data.items()}


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _plain(bundle: Mapping[str, Any], fmt: str = "") -> str:
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(_text(bundle.get("text/plain", "")), fmt)


def _options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split a directive's body into its ``:key: value`` options and the rest."""
    opts: dict[str, str] = {}
    i = 0
    if lines and lines[0].strip() == "---":  # YAML-style options
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            for line in lines[1:end]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    opts[k.strip()] = v.strip().strip("\"'")
            return opts, lines[end + 1:]
    while i < len(lines):
        m = re.match(r"^:([\w-]+):\s*(.*)$", lines[i])
        if not m:
            break
        opts[m.group(1)] = m.group(2).strip()
        i += 1
    return opts, lines[i:]


def _literal(path: Path, opts: Mapping[str, str]) -> str:
    """The text a ``{literalinclude}`` with ``opts`` shows (Sphinx's own reader)."""
    from sphinx.directives.code import LiteralIncludeReader

    keep: dict[str, Any] = {k: v for k, v in opts.items()
                            if k in ("pyobject", "start-after", "end-before", "lines", "start-at",
                                     "end-at")}
    if "dedent" in opts:  # Sphinx's option converter makes it a number
        keep["dedent"] = int(opts["dedent"])
    config = SimpleNamespace(source_encoding="utf-8")  # all the reader asks of the config
    text, _ = LiteralIncludeReader(str(path), {"encoding": "utf-8", **keep}, config).read()
    return text


class Renderer:
    """Rewrites one notebook's Markdown; see the module docstring."""

    def __init__(self, glue: Mapping[str, Mapping[str, Any]], source_dir: Path,
                 blocks: Mapping[str, str] | None = None,
                 doc_title: Callable[[str], str] | None = None) -> None:
        self.glue = glue
        self.source_dir = source_dir
        self.blocks = dict(blocks or {})
        self.doc_title = doc_title or (lambda target: target.rsplit("/", 1)[-1])

    # ------------------------------------------------------------------ roles
    def role(self, m: re.Match[str]) -> str:
        if m.group("code"):
            return m.group("code")  # inline code shows syntax on purpose
        name, content = m.group("name"), m.group("content")
        key, _, fmt = content.partition(":") if name.startswith("glue") else (content, "", "")
        if name in ("glue", "glue:", "glue:any", "glue:text"):
            bundle = self.glue.get(key)
            if bundle is None:
                raise KeyError(f"no glue value {key!r}")
            if name != "glue:text" and "text/markdown" in bundle:
                return _text(bundle["text/markdown"]).strip()
            return _plain(bundle, fmt)
        if name == "glue:md":
            bundle = self.glue.get(key)
            if bundle is None:
                raise KeyError(f"no glue value {key!r}")
            return _text(bundle.get("text/markdown", bundle.get("text/plain", ""))).strip()
        t = _TARGET.match(content)
        text, target = (t.group("text"), t.group("target")) if t else (None, content)
        if name == "doc":
            path = target if target.startswith("/") else target
            return f"[{text or self.doc_title(path)}]({path.lstrip('/')}.ipynb)"
        if name in ("term", "ref", "numref", "download", "abbr"):
            return text or target
        if name.startswith("py:") or name in ("code", "literal", "samp", "file", "command"):
            label = text or target.lstrip("~")
            if target.startswith("~"):
                label = label.rsplit(".", 1)[-1]
            return f"`{label}`"
        return text or target

    def roles(self, text: str) -> str:
        # Roles never span code spans in the book; skip inline code that is not a role.
        return _ROLE.sub(self.role, text)

    # ------------------------------------------------------------- directives
    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        opts, content = _options(body)
        if name == "include":
            path = (self.source_dir / arg).resolve()
            text = _literal(path, opts)
            return self.markdown(text).splitlines()
        if name == "literalinclude":
            path = (self.source_dir / arg).resolve()
            code = _literal(path, opts).rstrip("\n")
            lang = opts.get("language", "")
            return [f"```{lang}", *code.splitlines(), "```"]
        if name in ("glue:md", "glue:any", "glue", "glue:text"):
            bundle = self.glue.get(arg.strip())
            if bundle is None:
                raise KeyError(f"no glue value {arg.strip()!r}")
            md = bundle.get("text/markdown")
            if md is not None and name == "glue:md":  # glued Markdown may hold roles ({doc}) too
                return self.markdown(_text(md).strip("\n")).splitlines()
            return (_text(md) if md is not None else _plain(bundle)).strip("\n").splitlines()
        if name in ("code-block", "code", "sourcecode"):
            return [f"```{arg.strip()}", *content, "```"]
        if name in self.blocks:
            return self.blocks[name].splitlines()
        if name == "toctree":  # the chapters it lists, as links to their notebooks
            entries = [e.strip() for e in content if e.strip() and "*" not in e]
            caption = [f"**{opts['caption']}**", ""] if opts.get("caption") else []
            return caption + [f"- [{self.doc_title(e)}]({e}.ipynb)" for e in entries] + [""]
        if name in _ADMONITIONS or name.startswith("admonition"):
            title = arg.strip() or name.capitalize()
            inner = self.markdown("\n".join(content)).splitlines()
            return [f"> **{title}.**", ">", *[f"> {line}".rstrip() for line in inner]]
        if name == "dropdown":  # folded on the page; in a notebook, its title and its body
            inner = self.markdown("\n".join(content)).splitlines()
            return [f"**{arg.strip()}**", "", *inner] if arg.strip() else inner
        if name in ("glossary",):
            return self.markdown("\n".join(content)).splitlines()
        if name in ("figure", "image"):
            alt = opts.get("alt", "")
            return [f"![{alt}]({arg.strip()})"]
        if name in ("eval-rst", "raw"):
            return []
        # Anything else: keep what it says, without the syntax.
        return self.markdown("\n".join(content)).splitlines()

    def markdown(self, source: str) -> str:
        lines = source.splitlines()
        out: list[str] = []
        i = 0
        plain_fence: str | None = None
        while i < len(lines):
            line = lines[i]
            if plain_fence is not None:  # inside an ordinary code fence: copy verbatim
                out.append(line)
                if line.strip().startswith(plain_fence) and line.strip() == plain_fence[0] * len(
                        line.strip()):
                    plain_fence = None
                i += 1
                continue
            m = _FENCE_OPEN.match(line)
            if m:
                fence = m.group("fence")
                end = i + 1
                depth = 0
                while end < len(lines):
                    s = lines[end].strip()
                    if _FENCE_OPEN.match(lines[end]) and lines[end].strip().startswith(fence[0]):
                        inner = _FENCE_OPEN.match(lines[end]).group("fence")
                        if len(inner) == len(fence):
                            depth += 1
                    elif s and s == fence[0] * len(s) and len(s) >= len(fence):
                        if depth == 0:
                            break
                        depth -= 1
                    end += 1
                out += self.directive(m.group("name"), m.group("arg"), lines[i + 1:end])
                i = end + 1
                continue
            fm = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
            if fm:
                plain_fence = fm.group(1)
                out.append(line)
                i += 1
                continue
            if re.match(r"^\(\S+\)=\s*$", line):  # a MyST label: (name)=
                i += 1
                continue
            out.append(self.roles(line))
            i += 1
        return "\n".join(out)


def render(nb: dict[str, Any], source_dir: Path, *, glue: Mapping[str, Any] | None = None,
           blocks: Mapping[str, str] | None = None,
           doc_title: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Rewrite ``nb``'s Markdown cells in place (see the module docstring) and return it.

    ``source_dir`` is the chapter's folder (paths in ``{include}`` are relative to
    it); ``glue`` defaults to the values glued in ``nb``'s own outputs; ``blocks``
    maps a directive name (say ``evidence-table``) to the Markdown that replaces it.
    """
    renderer = Renderer(glue if glue is not None else glue_values(nb), source_dir, blocks,
                        doc_title)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        cell["source"] = renderer.markdown(_text(cell.get("source", "")))
    return nb


# A directive left in Markdown: what a reader must never see raw (roles: _ROLE).
RAW_DIRECTIVE = re.compile(r"^\s{0,3}(?:`{3,}|:{3,})\{[\w:.-]+\}")


def raw_syntax(nb: Mapping[str, Any]) -> list[str]:
    """Every raw MyST role or directive left in ``nb``'s Markdown cells (outside code fences)."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        inside = None
        for line in _text(cell.get("source", "")).splitlines():
            fm = re.match(r"^\s{0,3}(`{3,}|~{3,})(.*)$", line)
            if inside is None and fm and not fm.group(2).startswith("{"):
                inside = fm.group(1)
                continue
            if inside is not None:
                closing = line.strip()
                if closing and closing == inside[0] * len(closing) and len(closing) >= len(inside):
                    inside = None
                continue
            if RAW_DIRECTIVE.match(line):
                found.append(f"cell {i}: {line.strip()}")
            found += [f"cell {i}: {m.group(0)}" for m in _ROLE.finditer(line) if not m.group("code")]
    return found
