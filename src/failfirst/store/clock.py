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


class SkewedClock:
    """A worker's own clock in simulation: it reads the simulated clock but runs at
    ``rate`` of its speed from the moment its skew began (FM_006's clock-skew fault).

    Only what the worker decides by itself reads it: how long it waits between
    heartbeats and before its commit, and the time its handler sees. Every lease
    decision that matters (a deadline, an expiry, a heartbeat's new deadline) is
    taken by the store's clock, so a slow worker clock can delay a heartbeat, never
    extend a lease.
    """

    def __init__(self, true_clock: SimClock) -> None:
        self.true_clock = true_clock
        self.rate = 1.0
        self._true_base_s = 0.0
        self._own_base_s = 0.0

    def now_s(self) -> float:
        elapsed_s = self.true_clock.now_s() - self._true_base_s
        return round(self._own_base_s + elapsed_s * self.rate, 6)

    def set_rate(self, rate: float) -> None:
        """From now on, one simulated second reads as ``rate`` seconds on this clock."""
        assert rate > 0, "a clock may run slow or fast, never stop or go backwards"
        self._own_base_s, self._true_base_s = self.now_s(), self.true_clock.now_s()
        self.rate = rate

    def true_s(self, own_s: float) -> float:
        """How many simulated seconds pass while this clock counts ``own_s``."""
        assert own_s >= 0
        return own_s / self.rate
