"""Pace requests under a rate limit: request starts are spaced evenly, 60/rate seconds
apart (no bursts), so that any minute holds at most `rate` + 1 of them whatever window Pleo
counts in, retries included.

Twenty lines of our own rather than a rate-limit library: it must spend time through the
`Clock` port (tests run minutes of pacing in no time), it must say how long it would wait
before committing to it (the budget may not allow the wait), and the layer stays lean.
"""

from __future__ import annotations

import threading

from pleo_scope.clock import Budget, Clock
from pleo_scope.rate_budget import SlotUnavailable


class Pacer:
    """One process's own pace: what every request takes its slot from when no fleet-wide
    budget is configured (RATE_BUDGET_TABLE_NAME empty), as before there was one."""

    def __init__(self, requests_per_minute: float | None, clock: Clock) -> None:
        """`requests_per_minute` None (or 0): no pacing."""
        self._interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._clock = clock
        self._next_start = float("-inf")
        self._lock = threading.Lock()

    def delay(self) -> float:
        """How long the next request would wait for its slot."""
        with self._lock:
            return max(0.0, self._next_start - self._clock.monotonic())

    def acquire(self) -> float:
        """Take the next slot, sleeping until it comes; returns the seconds waited."""
        with self._lock:
            now = self._clock.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        wait = start - now
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def take(self, budget: Budget, request_seconds: float) -> float:
        """`RequestSlots.take`: the next slot, unless its wait and `request_seconds` do not
        fit in `budget` (then `SlotUnavailable`, nothing taken)."""
        wait = self.delay()
        if not budget.allows(wait + request_seconds):
            raise SlotUnavailable(wait, "this process")
        return self.acquire()
