"""`make notebooks`: write every chapter as an .ipynb outside the book, and run each.

Usage: python -m failfirst_book.notebooks OUTDIR

Each chapter is converted with jupytext and executed top to bottom by nbclient
in a fresh kernel, with the notebook's own folder as working directory (where a
reader will run it, outside the repository's book/ folder); the written notebook
keeps its outputs, and its Markdown is rewritten to read as the page does
(nbexport: glue values, included text and code). Exits 1 naming every chapter
that failed.

A chapter that ``make html`` executed after the last change to any file the
chapters run (the book, the library, the catalogue, the examples, the lock) is
not executed again: its executed notebook in ``_build/jupyter_execute`` is the
same chapter run by the same code, so it is rendered from there (the status line
says so). The build runs each chapter from book/, one folder deep like OUTDIR.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

from failfirst_book import chapters, nbexport

ROOT = chapters.BOOK.parent
#: Where ``make html`` (myst-nb, forced execution) leaves each chapter's executed notebook.
EXECUTED = ROOT / "_build" / "jupyter_execute"
#: What the chapters run: a change to any tracked file here makes an executed notebook stale.
SOURCES = ("book", "src", "failure_modes", "examples", "conf", "pyproject.toml", "uv.lock")


def newest_source_s() -> float | None:
    """The newest modification time among the tracked files the chapters run (None
    outside a git checkout: then nothing is reused)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", *SOURCES], cwd=ROOT, check=True,
                                capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    times = [(ROOT / name).stat().st_mtime for name in listed.decode().split("\0")
             if name and (ROOT / name).exists()]
    return max(times, default=None)


def executed_by_the_build(rel: Path, newest_s: float | None):  # noqa: ANN201 - a notebook
    """The build's executed notebook of chapter ``rel``, if it is newer than every source."""
    done = EXECUTED / rel
    if newest_s is None or not done.exists() or done.stat().st_mtime < newest_s:
        return None
    nb = nbformat.read(done, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return None if errors else nb


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = Path(argv[0])
    failed = []
    paths = chapters.chapters()
    newest_s = newest_source_s()
    for path in paths:
        rel = path.relative_to(chapters.BOOK).with_suffix(".ipynb")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = executed_by_the_build(rel, newest_s)
        if nb is not None:
            status = "ok (executed by make html after the last change)"
        else:
            nb = chapters.read(path)
            try:
                chapters.execute(nb, cwd=target.parent.resolve())
                status = "ok"
            except Exception as exc:  # report every chapter, then fail
                failed.append(str(rel))
                status = "FAILED\n" + chapters.plain(str(exc))
        if status.startswith("ok"):
            nbexport.render(nb, path.parent, blocks={
                "evidence-table": "The evidence table is built from every chapter: see the book.",
                "failure-mode-index": "The index is built from every chapter: see the book.",
                "catalogue": "The catalogue is built from every chapter: see the book.",
            })
            left = nbexport.raw_syntax(nb)
            if left:
                failed.append(str(rel))
                status = "FAILED: raw MyST left in the notebook: " + "; ".join(left[:5])
        nbformat.write(nb, target)
        print(f"{target}: {status}", flush=True)
    print(f"{len(paths) - len(failed)} of {len(paths)} notebooks ran top to bottom")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
