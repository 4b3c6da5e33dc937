"""The kill rate of ``make mutate`` (planted bugs the fast tests caught), per module, for
the contributing chapter: read from ``_build/mutate/results.json`` when the target ran
in this build, and labelled as absent when it did not (the page never plants bugs
itself: a full run takes many minutes).
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from typing import Any

from failfirst_book.evidence import build_path, of
from failfirst_book.tables import Table, plural

__all__ = ["kill_rate_table", "load_results", "planted_per_module", "summary"]


def load_results() -> dict[str, Any] | None:
    """What ``make mutate`` wrote in this build (``_build/mutate/results.json``), or None."""
    path = build_path("mutate", "results.json")
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    assert {"complete", "mutations", "caught", "by_module"} <= results.keys(), path
    return results


def planted_per_module() -> dict[str, int]:
    """The curated planted bugs per module, from ``tests/mutation/mutations.py`` (loaded
    by its path: ``tests`` is not an installed package)."""
    source = build_path().parent / "tests" / "mutation" / "mutations.py"
    spec = importlib.util.spec_from_file_location("failfirst_planted_bugs", source)
    assert spec is not None and spec.loader is not None, source
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(sorted(Counter(m.path for m in module.MUTATIONS).items()))


def _percent(caught: int, total: int) -> str:
    return f"{100 * caught / total:.0f}%" if total else "—"


def kill_rate_table(results: dict[str, Any] | None) -> Table:
    """Per module: planted bugs, how many a fast test caught, the kill rate. Without
    results, the planted bugs alone, and the caption says why."""
    if results is None:
        rows = [[module, n, "—", "—"] for module, n in planted_per_module().items()]
        caption = "`make mutate` had not run in this build: the planted bugs, no kill rate"
    else:
        rows = [[r["module"], r["total"], of(r["caught"], r["total"]), _percent(r["caught"], r["total"])]
                for r in results["by_module"]]
        rows.append(["all modules", results["mutations"], of(results["caught"], results["mutations"]),
                     _percent(results["caught"], results["mutations"])])
        caption = ("Planted bugs caught by the fast tests, from `make mutate` in this build"
                   + ("" if results["complete"] else " (a partial run: --only or --without)"))
    return Table(["module", "planted bugs", "caught", "kill rate"], rows, caption=caption)


def summary(results: dict[str, Any] | None) -> str:
    """One paragraph of Markdown: the kill rate in words, or why there is none."""
    if results is None:
        return ("`make mutate` had not run when this page was built, so it shows which modules "
                "carry planted bugs but no kill rate; run `make mutate`, then build the book.")
    survived = results.get("survived", [])
    not_run = results.get("not_run", [])
    text = (f"The fast tests caught {of(results['caught'], results['mutations'])} planted bugs "
            f"({_percent(results['caught'], results['mutations'])})")
    if survived:
        text += f"; {plural(len(survived), 'planted bug')} survived (numbers {', '.join(map(str, survived))})"
    if not_run:
        text += (f"; {plural(len(not_run), 'planted bug')} of the PostgreSQL store could not be judged "
                 "without a PostgreSQL server")
    return text + "."
