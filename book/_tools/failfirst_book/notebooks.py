"""`make notebooks`: write every chapter as an .ipynb outside the book, and run each.

Usage: python book/_tools/notebooks.py OUTDIR

Each chapter is converted with jupytext and executed top to bottom by nbclient
in a fresh kernel, with the notebook's own folder as working directory (where a
reader will run it, outside the repository's book/ folder); the written notebook
keeps its outputs, and its Markdown is rewritten to read as the page does
(nbexport: glue values, included text and code). Exits 1 naming every chapter
that failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from failfirst_book import chapters, nbexport


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = Path(argv[0])
    failed = []
    paths = chapters.chapters()
    for path in paths:
        rel = path.relative_to(chapters.BOOK).with_suffix(".ipynb")
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = chapters.read(path)
        try:
            chapters.execute(nb, cwd=target.parent.resolve())
            status = "ok"
        except Exception as exc:  # report every chapter, then fail
            failed.append(str(rel))
            status = "FAILED\n" + chapters.plain(str(exc))
        if status == "ok":
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
