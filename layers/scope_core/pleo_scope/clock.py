"""Time as a port: the walk and the retries read and spend time only through a `Clock`,
so that tests run days of back-off in no time and the Lambda deadline is one more input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime:
        """Wall-clock time, UTC-aware (for HTTP dates and manifest timestamps)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Budget:
    """How much time the current invocation may still spend.

    `deadline` is on `clock.monotonic()`'s scale; None means unbounded (CLI, demo).
    """

    clock: Clock
    deadline: float | None = None

    @classmethod
    def unbounded(cls, clock: Clock) -> Budget:
        return cls(clock, None)

    @classmethod
    def from_remaining(cls, clock: Clock, remaining_seconds: float) -> Budget:
        return cls(clock, clock.monotonic() + remaining_seconds)

    def remaining(self) -> float:
        if self.deadline is None:
            return float("inf")
        return self.deadline - self.clock.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.remaining() >= seconds
