"""Test helpers: a clock that only moves when slept, a client on it, requests counted in
sliding windows, and the scope rule written plainly."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget, Clock
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.pleo_client import ClientSettings, PleoClient, RetryPolicy
from pleo_scope.rate_budget import RequestSlots
from pleo_scope.scope import ScopeBuilder
from pleo_scope.walk import PageWalker
from tooling.testkit.harness import reference_scope

__all__ = ["reference_scope"]

API_KEY = "sim-api-key"
START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """Time stands still except when slept (or advanced by hand)."""

    elapsed: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return START + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


def make_client(
    *,
    base_url: str = "http://pleo.invalid",
    transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
    page_size: int = 100,
    read_timeout: float = 5.0,
    max_attempts: int = 5,
    max_requests_per_minute: float | None = None,
    slots: RequestSlots | None = None,
) -> PleoClient:
    return PleoClient(
        ClientSettings(
            base_url=base_url,
            page_size=page_size,
            connect_timeout=1.0,
            read_timeout=read_timeout,
            retry=RetryPolicy(max_attempts=max_attempts),
            max_requests_per_minute=max_requests_per_minute,
        ),
        CredentialAuth.of(Credential("apiKey", API_KEY)),
        clock=clock or FakeClock(),
        transport=transport,
        slots=slots,
    )


def walk_scope_bytes(client: PleoClient, job_id: str, budget: Budget) -> tuple[bytes, int]:
    """Walk the whole job and return (scope.jsonl bytes, pages fetched)."""
    walker = PageWalker(client, JobRef(job_id), budget)
    builder = ScopeBuilder()
    for fetched in walker:
        builder.add_items(fetched.page.items)
    assert walker.outcome is not None
    assert walker.outcome.done, walker.outcome
    return builder.build().jsonl, walker.outcome.position.pages_fetched


class StampingTransport(httpx.BaseTransport):
    """Notes the fake clock's time at each request start."""

    def __init__(self, inner: httpx.BaseTransport, clock: FakeClock) -> None:
        self.inner, self.clock = inner, clock
        self.starts: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.starts.append(self.clock.elapsed)
        return self.inner.handle_request(request)


def most_in_any_window(starts: list[float], window: float, resolution: float = 0.0) -> int:
    """Most of the (sorted) starts in any half-open window of `window` seconds; `resolution`:
    the clock's unit, below which two times are one."""
    most, first = 0, 0
    for last, start in enumerate(starts):
        while starts[first] <= start - window + resolution:
            first += 1
        most = max(most, last - first + 1)
    return most
