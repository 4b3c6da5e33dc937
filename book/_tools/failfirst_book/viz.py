"""Deprecated (0.2): ``failfirst.viz`` was split into :mod:`failfirst_book.tables`,
:mod:`failfirst_book.figures` and :mod:`failfirst_book.evidence`; this module re-exports
them under the old name for one release."""

from failfirst_book.evidence import *  # noqa: F403
from failfirst_book.evidence import __all__ as _evidence
from failfirst_book.figures import *  # noqa: F403
from failfirst_book.figures import __all__ as _figures
from failfirst_book.tables import *  # noqa: F403
from failfirst_book.tables import __all__ as _tables

__all__ = [*_evidence, *_figures, *_tables]
