"""pytest over the book: every MyST notebook chapter is one test item.

`pytest book/` runs them all, `pytest book/04_happy_path.md` runs one. Each
chapter is read with jupytext and executed with nbclient in a real Jupyter
kernel of the project's environment, with the chapter's folder as working
directory (as in the Sphinx build). A failure reports the chapter, the cell,
its line in the .md file, the cell's source and the traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from failfirst_book import chapters

# A chapter that measures (the Performance chapter, when `make bench` has not
# run) measures at a small size under pytest: this tests its code, it does not
# publish figures. The kernel inherits the variable.
os.environ["FAILFIRST_BOOK_SMOKE"] = "1"


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if chapters.is_chapter(file_path) and "_build" not in file_path.parts:
        return ChapterFile.from_parent(parent, path=file_path)
    return None


#: Chapters that need a PostgreSQL server: marked, so `make test` leaves them to `make test-pg`.
NEEDS_POSTGRESQL = {"postgresql"}


class ChapterFile(pytest.File):
    def collect(self):
        item = ChapterItem.from_parent(self, name=self.path.stem)
        if self.path.stem in NEEDS_POSTGRESQL:
            item.add_marker(pytest.mark.postgresql)
        yield item


class ChapterItem(pytest.Item):
    def runtest(self) -> None:
        nb = chapters.read(self.path)
        chapters.execute(nb, cwd=self.path.parent)

    def repr_failure(self, excinfo, style=None):
        from nbclient.exceptions import CellExecutionError, CellTimeoutError

        if isinstance(excinfo.value, CellExecutionError | CellTimeoutError):
            # nbclient's message already holds the cell source and the traceback.
            message = chapters.plain(str(excinfo.value))
            where = ""
            src = message.split("------------------\n")
            if len(src) >= 3:
                line = chapters.cell_line(self.path, src[1])
                where = f" (cell at line {line})" if line else ""
            return f"chapter {self.path.relative_to(self.config.rootpath)} failed{where}:\n{message}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"chapter {self.path.name}"
