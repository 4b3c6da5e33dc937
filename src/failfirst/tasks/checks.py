"""The one check the existing checkers cannot express: an effect applied by another
system (a service behind HTTP, a row in the task's database) at most once.

INV_001 says a job's effect is applied at most once. The processor's own effects are
``effect`` events (:func:`failfirst.proofs.checkers.check_inv001_effect_once`); a
payment provider's are ``charge`` events. A reader's task applies its effects through
the services and tables a proof declares, recorded as ``applied`` events (service,
effect, and ``identity``: what names one effect, or None for "one per job"). Two
``applied`` events with the same service, effect and identity are one effect applied
twice: a payment charged twice, an email sent twice, a row written twice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from failfirst.proofs.checkers import Violation
from failfirst.store import Store


def check_external_once(events: list[dict[str, Any]], store: Store) -> list[Violation]:
    """INV_001 for external effects: one ``applied`` event per (service, effect, identity)."""
    applied: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["kind"] == "applied":
            identity = e["identity"] if e["identity"] is not None else f"job {e['job']}"
            applied[(e["service"], e["effect"], identity)].append(e)
    out = []
    for (service, effect, identity), evs in sorted(applied.items()):
        if len(evs) < 2:
            continue
        refs = ", ".join(f"{e['ref']} (job {e['job']} attempt {e['attempt']})" for e in evs)
        out.append(Violation(
            "INV_001", evs[0]["job"], tuple(e["seq"] for e in evs),
            f"{service} applied {effect!r} {len(evs)} times for {identity}: {refs}",
        ))
    return out
