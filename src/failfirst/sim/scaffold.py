"""``failfirst new NAME``: a new failure-mode bundle and its chapter, from the template.

The bundle (``failure_modes/FM_NNN_NAME/``: spec, scenario, the repro/prevent/recover
tests) and its chapter (``book/FM_NNN_NAME.md``) are made from
``failure_modes/_template``: the id is the next FM number after the highest in use
(a retired number is never given again), the title is NAME in words. They start as a
working stand-in, so ``make test`` and ``make html`` pass at once and the new chapter
joins the index; the TODOs say what to replace.

Nothing is written unless everything is: the files are made in a hidden folder beside
the bundles and moved into place, the chapter last; a refused name, a taken name, or a
tree that cannot be written is one line (:class:`ScaffoldError`) and leaves the tree
as it was.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from failfirst.sim.catalogue import BUNDLE_NAME, bundles_dir
from failfirst.store.echo import shown, shown_path

#: NAME: a snake_case slug, ASCII, as the bundle's folder ends.
NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", re.ASCII)
MAX_NAME_CHARS = 40
TEMPLATE = "_template"
#: Template files end with this (so pytest, ruff and the catalogue pass them by).
SUFFIX = ".tmpl"
CHAPTER_TEMPLATE = "chapter.md.tmpl"
#: Template files that are about the template, not copied.
_NOT_COPIED = frozenset({"README.md", CHAPTER_TEMPLATE})
MAX_FM_NUMBER = 999


class ScaffoldError(Exception):
    """``failfirst new`` refused: one line, nothing written."""


@dataclass(frozen=True)
class Scaffolded:
    fm: str
    bundle: Path
    chapter: Path
    files: tuple[Path, ...]


def check_name(name: str) -> str:
    """NAME as given, or ScaffoldError saying what a name must be."""
    if len(name) > MAX_NAME_CHARS or not NAME.fullmatch(name):
        raise ScaffoldError(f"NAME {shown(name)}: a snake_case name (a-z, 0-9, single '_' "
                            f"between words, at most {MAX_NAME_CHARS} characters), e.g. lost_wakeup")
    return name


def title_of(name: str) -> str:
    """``lost_wakeup`` -> ``Lost wakeup``."""
    return name.replace("_", " ").capitalize()


def next_id(folder: Path, book: Path) -> str:
    """The FM number after the highest that a bundle or a chapter uses."""
    used = [int(m.group(1)[3:]) for p in [*folder.iterdir(), *book.iterdir()]
            if (m := BUNDLE_NAME.fullmatch(p.stem if p.suffix == ".md" else p.name))]
    number = max(used, default=0) + 1
    if number > MAX_FM_NUMBER:
        raise ScaffoldError(f"every id up to FM_{MAX_FM_NUMBER} is taken")
    return f"FM_{number:03d}"


def scaffold(name: str, root: Path | None = None) -> Scaffolded:
    """Make the bundle and chapter for failure mode ``name`` in the repository ``root``
    (default: the checkout this failfirst runs from)."""
    check_name(name)
    root = Path(root) if root is not None else bundles_dir().parent
    folder, book = root / "failure_modes", root / "book"
    for needed in (folder, book):
        if not needed.is_dir():
            raise ScaffoldError(f"{shown_path(str(needed))}: no such folder (failfirst new works in "
                                "a checkout of the repository: failure_modes/ and book/)")
    template = folder / TEMPLATE if (folder / TEMPLATE).is_dir() else bundles_dir() / TEMPLATE
    for existing in [*folder.iterdir(), *book.iterdir()]:
        match = BUNDLE_NAME.fullmatch(existing.stem if existing.suffix == ".md" else existing.name)
        if match and match.group(2) == name:
            raise ScaffoldError(f"a failure mode named {name} exists: "
                                f"{existing.parent.name}/{existing.name}")
    fm = next_id(folder, book)
    bundle = f"{fm}_{name}"
    words = {"__FM_ID__": fm, "__FM_LOWER__": fm.lower().replace("_", ""),
             "__FM_NUMBER__": str(int(fm[3:])), "__BUNDLE__": bundle, "__TITLE__": title_of(name)}
    # Hidden staging beside each destination (the same file system: a rename or link
    # there is atomic); removed whatever happens.
    stage = draft = None
    try:
        stage = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
        handle, name_ = tempfile.mkstemp(prefix=".new-", suffix=".md.part", dir=book)
        os.close(handle)
        draft = Path(name_)
        files = _render(template, stage / bundle, draft, words, fm)
        return _move_into_place(stage, folder / bundle, draft, book / f"{bundle}.md", fm, files)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else str(root)
        raise ScaffoldError(f"{shown_path(where)}: cannot write ({exc.strerror}); nothing written") \
            from None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if draft is not None:
            draft.unlink(missing_ok=True)


def _render(template: Path, bundle: Path, chapter: Path, words: dict[str, str],
            fm: str) -> list[Path]:
    """Write the bundle's files under ``bundle`` and the chapter at ``chapter``; return
    the bundle's files, relative to it."""
    files = []
    for source in sorted(template.rglob(f"*{SUFFIX}")):
        relative = source.relative_to(template)
        if relative.name == CHAPTER_TEMPLATE:
            continue
        target = bundle / relative.with_name(_target_name(relative.name, fm))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(source.read_text(encoding="utf-8"), words), encoding="utf-8")
        files.append(target.relative_to(bundle))
    chapter.write_text(_fill((template / CHAPTER_TEMPLATE).read_text(encoding="utf-8"), words),
                       encoding="utf-8")
    return files


def _target_name(name: str, fm: str) -> str:
    """``test_repro.py.tmpl`` -> ``test_repro_fm011.py``; others lose the suffix."""
    base = name[:-len(SUFFIX)]
    if base.startswith("test_") and base.endswith(".py"):
        return f"{base[:-3]}_{fm.lower().replace('_', '')}.py"
    return base


def _fill(text: str, words: dict[str, str]) -> str:
    for token, value in words.items():
        text = text.replace(token, value)
    assert "__FM_" not in text and "__BUNDLE__" not in text and "__TITLE__" not in text
    return text


def _move_into_place(stage: Path, bundle: Path, draft: Path, chapter: Path, fm: str,
                     files: list[Path]) -> Scaffolded:
    """The bundle folder first, then the chapter (a hard link: it never replaces a file);
    if the chapter cannot be placed, the bundle goes back, so nothing is left."""
    if bundle.exists() or chapter.exists():
        raise ScaffoldError(f"{fm}: {bundle.name} appeared meanwhile; nothing written")
    os.rename(stage / bundle.name, bundle)  # onto a path that does not exist: atomic
    try:
        os.link(draft, chapter)
    except OSError as exc:
        os.rename(bundle, stage / bundle.name)  # undo: nothing is left half made
        why = "it exists" if exc.errno == errno.EEXIST else exc.strerror
        raise ScaffoldError(f"{shown_path(str(chapter))}: cannot write ({why}); nothing written") \
            from None
    return Scaffolded(fm, bundle, chapter, tuple(files))
