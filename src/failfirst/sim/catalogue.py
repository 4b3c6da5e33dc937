"""The catalogue: failure-mode ids and the bundles under ``failure_modes/``."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache

from failfirst.sim.scenario import Scenario
from failfirst.store.echo import shown

#: ASCII digits only: ``\d`` would take ``١`` (an Arabic-Indic one) for FM_001.
_ID = re.compile(r"(?:fm_?)?0*([0-9]{1,3})", re.IGNORECASE | re.ASCII)


class UnknownFailureMode(ValueError):
    pass


def normalise_id(text: str) -> str:
    """``FM_001``, ``fm_001``, ``FM_1`` and ``1`` all name ``FM_001``."""
    match = _ID.fullmatch(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise UnknownFailureMode(f"not a failure-mode id: {shown(text)} (try FM_001, fm_1 or 1)")
    return f"FM_{int(match.group(1)):03d}"


@cache
def bundles() -> dict[str, str]:
    """Failure-mode id -> bundle package name, e.g. FM_001 -> FM_001_retry_duplication."""
    import failure_modes

    found = {}
    for info in pkgutil.iter_modules(failure_modes.__path__):
        if info.ispkg and re.match(r"^FM_\d{3}_", info.name):
            found[info.name[:6]] = info.name
    return dict(sorted(found.items()))


def load(fm_id: str) -> Scenario:
    """The scenario of a failure mode, by any accepted spelling of its id."""
    key = normalise_id(fm_id)
    if key not in bundles():
        known = ", ".join(bundles()) or "none"
        raise UnknownFailureMode(f"no failure mode {key} (known: {known})")
    module = importlib.import_module(f"failure_modes.{bundles()[key]}.scenario")
    scenario = module.SCENARIO
    assert scenario.id == key, f"{bundles()[key]} declares {scenario.id}"
    return scenario


def all_scenarios() -> list[Scenario]:
    return [load(key) for key in bundles()]
