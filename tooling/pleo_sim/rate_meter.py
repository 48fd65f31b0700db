"""Requests per credential, counted in sliding windows, and Pleo's limit enforced per
credential when asked: what a fleet-wide budget is measured against.

Every request that reaches the API is recorded under its credential (a digest of the
Authorization header, never the credential itself): arrivals, the 429s answered, and the most
arrivals in any window of a given length. With a `RateLimit`, a credential's request is
refused (429 with Retry-After) when it already has that many admitted requests in the sliding
window; refused requests are not admitted, as Pleo would not serve them, but they are counted
as arrivals (they were sent).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` API requests in any `per_seconds`. Refused requests do not count;
    they get 429 with Retry-After in whole seconds."""

    requests: int
    per_seconds: float = 60.0


def credential_of(headers: Mapping[str, str]) -> str:
    """A stable label for the credential a request carries (lower-case header names)."""
    value = headers.get("authorization", "")
    if not value:
        return "anonymous"
    return "cred-" + hashlib.sha256(value.encode()).hexdigest()[:12]


@dataclass
class _Credential:
    arrivals: list[float] = field(default_factory=list)
    admitted: deque[float] = field(default_factory=deque)
    throttled: int = 0


@dataclass(frozen=True)
class CredentialReport:
    credential: str
    requests: int
    throttled: int
    most_in_10s: int
    most_in_60s: int


class RateMeter:
    def __init__(self, clock: Callable[[], float], limit: RateLimit | None = None) -> None:
        self._clock = clock
        self._limit = limit
        self._credentials: dict[str, _Credential] = {}
        self._lock = threading.Lock()

    def set_limit(self, limit: RateLimit | None) -> None:
        """Enforce `limit` per credential from now on (None: count only)."""
        with self._lock:
            self._limit = limit
            for meter in self._credentials.values():
                meter.admitted.clear()

    def reset(self) -> None:
        with self._lock:
            self._credentials.clear()

    def arrive(self, credential: str) -> int | None:
        """Record a request; None when admitted, else the Retry-After (seconds) of its 429."""
        with self._lock:
            now = self._clock()
            meter = self._credentials.setdefault(credential, _Credential())
            meter.arrivals.append(now)
            limit = self._limit
            if limit is None:
                return None
            while meter.admitted and meter.admitted[0] <= now - limit.per_seconds:
                meter.admitted.popleft()
            if len(meter.admitted) < limit.requests:
                meter.admitted.append(now)
                return None
            meter.throttled += 1
            return max(1, math.ceil(meter.admitted[0] + limit.per_seconds - now))

    def requests(self, credential: str) -> int:
        with self._lock:
            meter = self._credentials.get(credential)
            return len(meter.arrivals) if meter else 0

    def throttled(self, credential: str | None = None) -> int:
        with self._lock:
            if credential is not None:
                meter = self._credentials.get(credential)
                return meter.throttled if meter else 0
            return sum(meter.throttled for meter in self._credentials.values())

    def most_in_any_window(self, credential: str, seconds: float) -> int:
        """The most requests of `credential` whose arrivals fit in a window of `seconds`
        (half-open: requests exactly `seconds` apart are not in one window)."""
        with self._lock:
            meter = self._credentials.get(credential)
            arrivals = sorted(meter.arrivals) if meter else []
        most = 0
        for last, arrival in enumerate(arrivals):
            first = bisect.bisect_right(arrivals, arrival - seconds)
            most = max(most, last - first + 1)
        return most

    def report(self) -> list[CredentialReport]:
        with self._lock:
            credentials = list(self._credentials)
        return [
            CredentialReport(
                credential,
                self.requests(credential),
                self.throttled(credential),
                self.most_in_any_window(credential, 10.0),
                self.most_in_any_window(credential, 60.0),
            )
            for credential in credentials
        ]
