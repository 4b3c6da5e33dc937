"""The benchmarks (`make bench`, `make stress`, `make bench-explore`).

Part of the installed package, so that a chapter imports the measurement code it
runs by name from wherever a notebook runs (``from failfirst.bench import
throughput``); each module is also a script that its Make target runs
(``python -m failfirst.bench.throughput``). Results go to the repository's
``_build/`` (:data:`BUILD`).

The top layer: it may import every other package (it measures them).
"""

from pathlib import Path

#: Where benchmarks write their results: the source tree's ``_build/`` (a benchmark
#: is run from a clone, with ``make``).
BUILD = Path(__file__).resolve().parents[3] / "_build"
