"""The book's own tooling, kept out of the library a reader imports (matplotlib and
Sphinx are only in the ``docs`` group).

For chapters: :mod:`~failfirst_book.tables` (histories and results as tables, and the
words values are printed with), :mod:`~failfirst_book.figures` (timelines, rates, the
state diagram, as deterministic SVG), :mod:`~failfirst_book.evidence` (what a chapter
records of its results, its "Try it yourself" block, the build's result files).

For the build: :mod:`~failfirst_book.sphinx_ext` (the Sphinx extension),
:mod:`~failfirst_book.chapters` and :mod:`~failfirst_book.notebooks` (chapters run
outside Sphinx: ``pytest book/``, ``make notebooks``), :mod:`~failfirst_book.nbexport`
(a notebook's Markdown made to read as its page), :mod:`~failfirst_book.check_site`
(``make test-site``).
"""
