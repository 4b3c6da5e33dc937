"""Find, read and execute the book's chapters outside Sphinx.

Shared by book/conftest.py (pytest over the chapters) and notebooks.py
(`make notebooks`), so both run a chapter exactly the same way: read with
jupytext, executed by nbclient in a fresh kernel of the project's environment.
"""

from __future__ import annotations

import re
from pathlib import Path

BOOK = Path(__file__).resolve().parents[2]
#: Chapters that run this long are broken, not slow (the whole book builds in < 60 s).
CELL_TIMEOUT_S = 180
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_chapter(path: Path) -> bool:
    """A MyST notebook: a .md file whose front matter declares the mystnb format."""
    if path.suffix != ".md" or any(p.startswith(("_", ".")) for p in path.parts[-2:]):
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and re.search(r"^file_format:\s*mystnb\s*$", head, re.M) is not None


def chapters(root: Path = BOOK) -> list[Path]:
    """Every notebook chapter under ``root``, in a stable order."""
    skip = {"_build", "_tools", ".ipynb_checkpoints"}
    return sorted(p for p in root.rglob("*.md") if not skip & set(p.parts) and is_chapter(p))


def read(path: Path):
    """The chapter as an nbformat notebook (jupytext reads the MyST format)."""
    import jupytext

    nb = jupytext.read(path, fmt="md:myst")
    for i, cell in enumerate(nb.cells):  # jupytext draws ids at random; keep them stable
        cell["id"] = f"cell-{i}"
    return nb


def execute(nb, cwd: Path):
    """Run every cell top to bottom in a fresh python3 kernel, with ``cwd`` as working directory.

    The kernel is the ``python3`` kernelspec; jupyter_client launches it with
    ``sys.executable`` (it swaps a bare ``python`` in the kernelspec for the
    running interpreter), so the kernel is this project's environment.
    Raises nbclient's CellExecutionError on the first failing cell.
    """
    from nbclient import NotebookClient
    from traitlets.config import Config

    # CurveZMQ keys for the kernel's sockets (ipykernel's kernelspec supports
    # them): without, every kernel warns that it runs over TCP unencrypted.
    config = Config({"KernelManager": {"transport_encryption": "auto"}})
    # A chapter may ask for more time in its front matter, as Sphinx honours it
    # (mystnb: execution_timeout: N).
    timeout_s = (nb.metadata.get("mystnb") or {}).get("execution_timeout", CELL_TIMEOUT_S)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout_s, allow_errors=False,
        resources={"metadata": {"path": str(cwd)}}, config=config,
    )
    client.execute()
    return nb


def plain(text: str) -> str:
    """Text without terminal colour codes (tracebacks from IPython carry them)."""
    return _ANSI.sub("", text)


def cell_line(path: Path, source: str) -> int | None:
    """The line of ``path`` where the code cell with ``source`` starts (best effort)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next((s for s in source.splitlines() if s.strip()), None)
    if first is None:
        return None
    for i, line in enumerate(lines, start=1):
        if line == first:
            return i
    return None
