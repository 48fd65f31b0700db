"""The fleet-wide rate budget for code beyond the walk: a consumer of the scope (data layer
reads, item-status PUTs) takes its Pleo requests' slots from the same budget as the walks.

    from pleo_scope.rate_limit import rate_budget_transport
    http = httpx.Client(base_url=..., transport=rate_budget_transport(company_id))

or, around requests made some other way, `request_slots(company_id).take(budget, seconds)`
before each. Built once per process from the same environment as the function:
RATE_BUDGET_TABLE_NAME (the stack's RateBudgetTable; the consumer's role needs
dynamodb:UpdateItem on it), PLEO_RATE_LIMIT_SCOPE and PLEO_MAX_REQUESTS_PER_MINUTE. Without a
table, each process paces itself (what the function did before the fleet-wide budget).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from pleo_scope.clock import Budget, Clock, SystemClock
from pleo_scope.pacing import Pacer
from pleo_scope.rate_budget import (
    FleetRateLimiter,
    RateLimitScope,
    RequestSlots,
    SlotUnavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["RateBudgetTransport", "SlotUnavailable", "rate_budget_transport", "request_slots"]

_limiter: FleetRateLimiter | None = None
_pacers: dict[str | None, Pacer] = {}
_lock = threading.Lock()


def request_slots(
    company_id: str | None = None,
    requests_per_minute: float | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    dynamodb: DynamoDBClient | None = None,
    clock: Clock | None = None,
) -> RequestSlots:
    """The budget the requests for `company_id` (None: the default tenant) take their slots
    from; `requests_per_minute` is the company's own limit (its registry record), if any."""
    global _limiter
    clock = clock or SystemClock()
    default = float(env.get("PLEO_MAX_REQUESTS_PER_MINUTE", "").strip() or 500)
    table = env.get("RATE_BUDGET_TABLE_NAME", "").strip()
    with _lock:
        if not table:
            pacer = _pacers.get(company_id)
            if pacer is None:
                pacer = _pacers[company_id] = Pacer(requests_per_minute or default, clock)
            return pacer
        if _limiter is None:
            from pleo_scope.aws.rate_budget import DynamoRateBudgetStore

            if dynamodb is None:
                import boto3

                dynamodb = boto3.client("dynamodb")
            scope: RateLimitScope = "company"
            if env.get("PLEO_RATE_LIMIT_SCOPE", "").strip() == "client":
                scope = "client"
            store = DynamoRateBudgetStore(dynamodb, table)
            _limiter = FleetRateLimiter(store, clock, scope, default)
        limiter = _limiter
    return limiter.budget(company_id, requests_per_minute)


class RateBudgetTransport(httpx.BaseTransport):
    """Takes a slot before each request it sends. `budget` says how long the caller may
    still wait (say, a Lambda's remaining time); a slot further away raises
    `SlotUnavailable` before anything is sent (leave the work for later)."""

    def __init__(
        self,
        slots: RequestSlots,
        inner: httpx.BaseTransport | None = None,
        *,
        budget: Callable[[], Budget] | None = None,
        request_seconds: float = 13.0,
    ) -> None:
        self._slots = slots
        self._inner = inner or httpx.HTTPTransport()
        self._budget = budget or (lambda: Budget.unbounded(SystemClock()))
        self._request_seconds = request_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._slots.take(self._budget(), self._request_seconds)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def rate_budget_transport(
    company_id: str | None = None,
    requests_per_minute: float | None = None,
    *,
    inner: httpx.BaseTransport | None = None,
    budget: Callable[[], Budget] | None = None,
) -> RateBudgetTransport:
    """An httpx transport whose every request takes its slot from the company's budget."""
    return RateBudgetTransport(request_slots(company_id, requests_per_minute), inner, budget=budget)
