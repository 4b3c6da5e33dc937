"""failfirst: a failure-mode lab for background job processing.

Packages by role, each layer importing only the layers below it:

0. :mod:`failfirst.store`: the store interface, SQLite and PostgreSQL, URLs, clocks;
1. :mod:`failfirst.processor`: the state machine, the queue, the worker loop,
   guardrails, backoff, recovery;
2. :mod:`failfirst.sim`: scenarios, choices, the scheduler, simulated services;
3. :mod:`failfirst.proofs`: checkers, runs, the explorer, proofs;
4. :mod:`failfirst.tasks`: a reader's own Celery, RQ, Dramatiq or plain task under the
   judge, and the pytest plugin (``failfirst.prove`` is :func:`failfirst.tasks.prove.prove`);
5. :mod:`failfirst.realrun`: worker processes on a real store, real faults;
6. :mod:`failfirst.peers`: the crash experiment against other queues;
7. :mod:`failfirst.cli`: the command line;
8. :mod:`failfirst.bench`: the benchmarks (they measure everything below).

``tests/test_layers.py`` checks the order from the source.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: The packages by layer, lowest first: a module may import only from its own package
#: and the packages before it (tests/test_layers.py checks it; the API reference
#: follows this order).
LAYERS: tuple[str, ...] = (
    "store", "processor", "sim", "proofs", "tasks", "realrun", "peers", "cli", "bench",
)

#: Modules that moved when the package was split by role (0.2), importable under their
#: old names for one release, with a DeprecationWarning that names the new one.
MOVED: dict[str, str] = {
    "failfirst.clock": "failfirst.store.clock",
    "failfirst.transitions": "failfirst.processor.transitions",
    "failfirst.batch": "failfirst.processor.queue",
    "failfirst.worker": "failfirst.processor.worker",
    "failfirst.policies": "failfirst.processor.policies",
    "failfirst.backoff": "failfirst.processor.backoff",
    "failfirst.recovery": "failfirst.processor.recovery",
    "failfirst.choices": "failfirst.sim.choices",
    "failfirst.scenario": "failfirst.sim.scenario",
    "failfirst.downstream": "failfirst.sim.services",
    "failfirst.por": "failfirst.sim.reduction",
    "failfirst.history": "failfirst.sim.history",
    "failfirst.catalogue": "failfirst.sim.catalogue",
    "failfirst.happy": "failfirst.sim.happy",
    "failfirst.checkers": "failfirst.proofs.checkers",
    "failfirst.runner": "failfirst.proofs.run",
    "failfirst.explore": "failfirst.proofs.explorer",
    "failfirst.proof": "failfirst.proofs.prove",
    "failfirst.differential": "failfirst.proofs.differential",
    "failfirst.refinement": "failfirst.proofs.refinement",
    "failfirst.stress": "failfirst.realrun.driver",
    "failfirst.pgstress": "failfirst.realrun.faults",
    "failfirst.viz": "failfirst_book.viz",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module under its old name: the module object is the new one."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: ANN001
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):  # noqa: ANN001
        pass  # the module returned by create_module is already executed


def __getattr__(name: str) -> object:
    # ``failfirst.prove``: the reader's entry point, loaded on first use (it needs the
    # ``tasks`` extra: greenlet, httpx, respx).
    if name == "prove":
        from failfirst.tasks import require_extra

        require_extra()
        from failfirst.tasks.prove import prove

        return prove
    raise AttributeError(f"module 'failfirst' has no attribute {name!r}")


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
