"""The checkpoint of a long exploration (``explore --checkpoint FILE``).

An exhaustive exploration at deep bounds runs for minutes. Its checkpoint is one JSON
file: what exploration it belongs to (the failure mode, guard, mode, bounds,
reduction, seed, and a fingerprint of the scenario), where the search stands (the next
schedule of a depth-first search, the sleep-set search's path with its footprints, the
subtrees a parallel search has finished, or the next random run) and everything
counted so far. It is written atomically (a temporary file beside it, then a rename)
at the start and every few seconds, so a Ctrl-C, a SIGTERM or a crash leaves the last
consistent one; an exploration started again with the same FILE resumes from it and
reports the same counts as one that was never interrupted. A finished exploration
removes its checkpoint.

FILE must be a new path or a regular file that holds a checkpoint of the same
exploration: a directory, a device, a FIFO, a symbolic link (give its target), a file
of another kind or the checkpoint of another exploration is refused before anything
runs, and nothing is written over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from typing import Any

FORMAT = "failfirst-explore-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint path or file that cannot be used: a one-line reason."""


def scenario_fingerprint(scenario: Any) -> str:
    """A digest of what shapes a scenario's choice tree: its jobs, workers, faults and
    bounds (two scenarios with one id but other jobs must not share a checkpoint)."""
    shape = {
        "id": scenario.id, "workers": scenario.workers, "max_steps": scenario.max_steps,
        "jobs": [[j.type, j.payload, j.idempotency_key, j.max_attempts, j.delay_s] for j in scenario.jobs],
        "faults": [sorted((p, list(k)) for p, k in scenario.faults.points.items()),
                   scenario.faults.max_faults, scenario.faults.pause_s, scenario.faults.restart_s,
                   scenario.faults.skew_rate],
        "reaper": scenario.reaper, "relay": scenario.relay, "recovery_at_s": scenario.recovery_at_s,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_path(path: str) -> None:
    """Refuse, before anything runs, a path the checkpoint must not be written to."""
    shown = path if len(path) <= 80 else path[:77] + "..."
    if not path:
        raise CheckpointError("--checkpoint: an empty path")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise CheckpointError(f"--checkpoint {shown}: no such directory {parent}") from None
        if not os.access(parent, os.W_OK):
            raise CheckpointError(f"--checkpoint {shown}: cannot write in {parent}") from None
        return
    except OSError as exc:
        raise CheckpointError(f"--checkpoint {shown}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise CheckpointError(f"--checkpoint {shown}: a symbolic link; give the file it points to")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"--checkpoint {shown}: not a regular file")


def load(path: str, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of this exploration (None: no checkpoint yet, start afresh);
    CheckpointError when FILE is something else."""
    check_path(path)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"--checkpoint {path}: not a failfirst checkpoint") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"--checkpoint {path}: not a failfirst checkpoint")
    if data.get("identity") != identity:
        theirs = data.get("identity") if isinstance(data.get("identity"), dict) else {}
        differ = sorted(k for k in identity if theirs.get(k) != identity[k])
        raise CheckpointError(f"--checkpoint {path}: the checkpoint of another exploration "
                              f"(differs in {', '.join(differ) or 'its shape'})")
    state = data.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"--checkpoint {path}: not a failfirst checkpoint")
    return state


def save(path: str, identity: dict[str, Any], state: dict[str, Any]) -> None:
    """Write atomically: a reader (or a resumed run) sees the old file or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ff-checkpoint-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "identity": identity, "state": state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove(path: str) -> None:
    """A finished exploration leaves nothing to resume."""
    if os.path.isfile(path) and not os.path.islink(path):
        os.unlink(path)


__all__ = ["FORMAT", "CheckpointError", "check_path", "load", "remove", "save",
           "scenario_fingerprint"]
