"""The catalogue: failure-mode ids and the bundles under ``failure_modes/``.

A bundle is a folder ``FM_NNN_slug`` holding ``spec.md`` (whose first heading is
``# FM_NNN — Title: ...``), ``scenario.py`` (whose ``SCENARIO`` has ``id="FM_NNN"``
and ``title="Title"``) and its tests; its chapter, when it has one, is
``book/FM_NNN_slug.md``, titled ``# FM_NNN — Title``, and refers to no other bundle.
:func:`bundle_problems` checks that they all agree (``make test`` and the book's
build both run it), so a copied spec or chapter cannot make the index name one
failure mode for another.

A failure mode's guardrails are its scenario's :attr:`~failfirst.sim.scenario.Scenario.guardrail_names`,
the ones ``--guard off`` switches off; :func:`guardrails_text` is how every listing
says them.

Where the bundles are imported from: in a checkout (the editable install) the
repository's ``failure_modes/`` folder is the top-level package ``failure_modes``; the
wheel ships the same folder inside failfirst as ``failfirst.failure_modes`` (without the
bundles' tests), so an installed failfirst adds no other top-level name.
:func:`catalogue_package` picks the one this failfirst has.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from functools import cache
from pathlib import Path

from failfirst.sim.scenario import Scenario
from failfirst.store.echo import shown

#: ASCII digits only: ``\d`` would take ``١`` (an Arabic-Indic one) for FM_001.
_ID = re.compile(r"(?:fm_?)?0*([0-9]{1,3})", re.IGNORECASE | re.ASCII)
#: A bundle's folder (and its chapter's file name, with ``.md``): id, then a snake_case slug.
BUNDLE_NAME = re.compile(r"(FM_[0-9]{3})_([a-z][a-z0-9]*(?:_[a-z0-9]+)*)", re.ASCII)
#: A bundle's spec and chapter begin with this heading (the title, then more in the spec).
_HEADING = re.compile(r"# (FM_[0-9]{3}) — ([^:\n]+?)(?::.*)?\s*$")
#: How a chapter names a bundle: a path or an import, and its evidence record.
_BUNDLE_REFERENCE = re.compile(r"failure_modes[./](FM_[0-9]{3}_\w+)")
_EVIDENCE_FM = re.compile(r"\bfm\s*=\s*[\"'](FM_[0-9]{3})[\"']")


class UnknownFailureMode(ValueError):
    pass


def normalise_id(text: str) -> str:
    """``FM_001``, ``fm_001``, ``FM_1`` and ``1`` all name ``FM_001``."""
    match = _ID.fullmatch(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise UnknownFailureMode(f"not a failure-mode id: {shown(text)} (try FM_001, fm_1 or 1)")
    return f"FM_{int(match.group(1)):03d}"


#: The catalogue inside an installed wheel.
PACKAGED = "failfirst.failure_modes"
#: The catalogue of a checkout: the repository's top-level package.
CHECKOUT = "failure_modes"


@cache
def catalogue_package() -> str:
    """The import name of the bundles' package: the wheel's own copy when there is one
    (never a reader's module that happens to be called ``failure_modes``), else the
    checkout's."""
    return PACKAGED if importlib.util.find_spec(PACKAGED) is not None else CHECKOUT


def bundles_dir() -> Path:
    """The folder of the bundles (the package :func:`catalogue_package` names)."""
    package = importlib.import_module(catalogue_package())
    return Path(next(iter(package.__path__))).resolve()


@cache
def bundles() -> dict[str, str]:
    """Failure-mode id -> bundle package name, e.g. FM_001 -> FM_001_retry_duplication."""
    found = {}
    for info in pkgutil.iter_modules([str(bundles_dir())]):
        if info.ispkg and BUNDLE_NAME.fullmatch(info.name):
            found[info.name[:6]] = info.name
    return dict(sorted(found.items()))


def load(fm_id: str) -> Scenario:
    """The scenario of a failure mode, by any accepted spelling of its id."""
    key = normalise_id(fm_id)
    if key not in bundles():
        known = ", ".join(bundles()) or "none"
        raise UnknownFailureMode(f"no failure mode {key} (known: {known})")
    module = importlib.import_module(f"{catalogue_package()}.{bundles()[key]}.scenario")
    scenario = module.SCENARIO
    assert scenario.id == key, f"{bundles()[key]} declares {scenario.id}"
    return scenario


def all_scenarios() -> list[Scenario]:
    return [load(key) for key in bundles()]


def guardrails_text(scenario: Scenario) -> str:
    """Every guardrail ``--guard off`` switches for the scenario, as listings say them."""
    return " + ".join(scenario.guardrail_names)


def _heading(path: Path) -> tuple[str, str] | None:
    """(id, title) of the first ``# `` heading of a Markdown file, or None."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            match = _HEADING.fullmatch(line)
            return (match.group(1), match.group(2).strip()) if match else None
    return None


def bundle_problems(folder: Path | None = None, book: Path | None = None) -> list[str]:
    """Every disagreement between a bundle's folder, spec, scenario and chapter, one
    sentence each (empty: they agree). ``folder``: the bundles (default: the
    catalogue's package, :func:`bundles_dir`; the scenarios are imported only from there); ``book``:
    the chapters (default: ``book/`` beside it, when there is one)."""
    folder = (folder or bundles_dir()).resolve()
    if book is None and (folder.parent / "book").is_dir():
        book = folder.parent / "book"
    importable = folder == bundles_dir()
    problems: list[str] = []
    ids: dict[str, str] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("FM_")):
        match = BUNDLE_NAME.fullmatch(path.name)
        if match is None:
            problems.append(f"failure_modes/{path.name}: not FM_NNN_snake_case_name")
            continue
        fm = match.group(1)
        if fm in ids:
            problems.append(f"failure_modes/{path.name}: {fm} is also failure_modes/{ids[fm]}")
        ids[fm] = path.name
        problems += _spec_and_scenario_problems(path, fm, importable)
    if book is not None:
        problems += _chapter_problems(book, folder, ids)
    return problems


def _spec_and_scenario_problems(path: Path, fm: str, importable: bool) -> list[str]:
    where = f"failure_modes/{path.name}"
    spec = path / "spec.md"
    if not spec.is_file():
        return [f"{where}: no spec.md"]
    heading = _heading(spec)
    if heading is None:
        return [f"{where}/spec.md: its first heading is not '# {fm} — Title: ...'"]
    problems = []
    if heading[0] != fm:
        problems.append(f"{where}/spec.md describes {heading[0]}, not {fm}")
    if not (path / "scenario.py").is_file():
        return [*problems, f"{where}: no scenario.py"]
    if importable:
        scenario = importlib.import_module(f"{catalogue_package()}.{path.name}.scenario").SCENARIO
        if scenario.id != fm:
            problems.append(f"{where}/scenario.py declares {scenario.id}, not {fm}")
        if scenario.title != heading[1]:
            problems.append(f"{where}: the spec's title {heading[1]!r} is not the scenario's "
                            f"{scenario.title!r}")
    return problems


def _chapter_problems(book: Path, folder: Path, ids: dict[str, str]) -> list[str]:
    problems = []
    for chapter in sorted(book.glob("FM_*.md")):
        where = f"book/{chapter.name}"
        fm = chapter.name[:6]
        bundle = ids.get(fm)
        if bundle is None:
            problems.append(f"{where}: no bundle failure_modes/{fm}_* for this chapter")
            continue
        if chapter.stem != bundle:
            problems.append(f"{where}: the chapter of failure_modes/{bundle} is book/{bundle}.md")
        text = chapter.read_text(encoding="utf-8")
        heading = _heading(chapter)
        if heading is None or heading[0] != fm:
            problems.append(f"{where}: its title is not '# {fm} — ...'")
        spec = folder / bundle / "spec.md"
        spec_heading = _heading(spec) if spec.is_file() else None
        if heading and spec_heading and heading[1] != spec_heading[1]:
            problems.append(f"{where}: its title {heading[1]!r} is not its spec's {spec_heading[1]!r}")
        others = sorted({name for name in _BUNDLE_REFERENCE.findall(text) if name != bundle})
        if others:
            problems.append(f"{where}: refers to {', '.join(others)}, not only its own bundle {bundle}")
        recorded = sorted(set(_EVIDENCE_FM.findall(text)) - {fm})
        if recorded:
            problems.append(f"{where}: records evidence for {', '.join(recorded)}, not {fm}")
    return problems
