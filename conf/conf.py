# Sphinx configuration for the failfirst book: sphinx-build -c conf book _build/html
#
# The gate (`make html`) builds with -E -W -n --keep-going -j auto and forced
# execution; `make preview` overrides nb_execution_mode to "cache" with -D.
from importlib.metadata import version as _version

project = "failfirst"
author = "the failfirst authors"
copyright = "the failfirst authors"  # no year: a build never reads the wall clock
release = version = _version("failfirst")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx_copybutton",
    "sphinx_design",
    "failfirst_book.sphinx_ext",
]

root_doc = "index"
exclude_patterns = ["_build", "_tools", "**/.ipynb_checkpoints", "conftest.py"]
nitpicky = True
# No intersphinx: its inventories live on other hosts and the build runs
# offline. Standard-library types in signatures therefore cannot resolve;
# they are the only references excused from nitpicky mode.
nitpick_ignore_regex = [
    (r"py:(class|obj|exc|data)",
     r"(sqlite3|pathlib|collections\.abc|typing|random|json|argparse|dataclasses|enum|io"
     r"|contextlib|types|hashlib|concurrent\.futures|subprocess|psycopg)\..*"),
    (r"py:(class|obj)", r"(Path|Iterator|Iterable|Sequence|Mapping|Callable|Any|Self)"),
    # Base classes of the benchmarks' own apps (failfirst.bench): other projects' types.
    (r"py:class", r"(hypothesis\.stateful|huey\.storage)\..*"),
    # failfirst.tasks: the reader's clients and the test runner (other projects' types).
    (r"py:(class|obj|exc)", r"(httpx|greenlet|pytest|_pytest|respx|ssl)\..*"),
]

# --- MyST and myst-nb -------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

nb_execution_mode = "force"  # the gate never trusts a cache; `make preview` sets "cache"
nb_execution_timeout = 180  # seconds per cell: the slowest proof must fit with room to spare
nb_execution_in_temp = False  # cells run with the chapter's folder as cwd, as in pytest book/
nb_execution_show_tb = True  # the failing cell and its traceback go to the build log
# Not True: raising aborts the whole build at the first failing chapter. As a
# warning, each failing chapter is logged with its cell and traceback, the
# build carries on (Sphinx keeps going by default), failfirst_book adds a
# one-line summary per failed chapter, and -W turns it all into a failed build.
nb_execution_raise_on_error = False
nb_execution_allow_errors = False
nb_merge_streams = True
nb_output_stderr = "show"
# Markdown that cells display is parsed as MyST, so generated tables can use
# {py:func} roles, which nitpicky mode then checks against the API reference.
nb_render_markdown_format = "myst"

# --- HTML ------------------------------------------------------------------
html_theme = "furo"
html_title = f"failfirst {release}"
html_static_path = ["_static"]
html_css_files = ["failfirst.css"]
html_last_updated_fmt = None  # no build dates: the site is a function of the sources
html_copy_source = True
html_show_sourcelink = True
# furo, sphinx-copybutton and sphinx-design ship their CSS/JS and need no CDN.
# MathJax would come from a CDN, so the book uses no math; failfirst_book's
# offline check (failfirst_book.sphinx_ext) fails the build if any page ever loads a remote asset.

# --- autodoc ---------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True,
                           "special-members": "__init__"}
# A dataclass's generated __init__ keeps its annotations as unevaluated strings
# (the modules use `from __future__ import annotations`), which autodoc prints
# verbatim and nitpicky mode cannot resolve. With "separated" a class line has
# no signature; its fields are documented as attributes, whose types autodoc
# does evaluate, and a hand-written __init__ with a docstring is still shown.
autodoc_class_signature = "separated"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
