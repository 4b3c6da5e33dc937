"""Time sources. Simulation reads only :class:`SimClock`; real runs read the wall clock."""

from __future__ import annotations

import time


class SimClock:
    """Simulated seconds, advanced only by the simulator."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s

    def now_s(self) -> float:
        return self._now_s

    def advance_to(self, t_s: float) -> None:
        assert t_s >= self._now_s, "simulated time never goes backwards"
        self._now_s = t_s


class RealClock:
    """Wall-clock seconds (epoch): shared by every worker process of a real run,
    so that a lease deadline written by one process means the same to another."""

    def now_s(self) -> float:
        return round(time.time(), 6)  # real-time: real runs only
