"""The Pleo port over HTTP (httpx): the two Export API reads this project makes.

One instance per process and tenant (connection reuse). Every call takes the invocation's
`Budget`: a retry whose wait would not fit in it, or is longer than the cap, raises
`RetryDeferred` instead of sleeping, and the walk turns that into a continuation. The tenant's
`httpx.Auth` (pleo_scope.auth) authorises each request, and renews its credential on a 401.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from pleo_scope.clock import Budget, Clock, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.errors import (
    BadRequest,
    CredentialRejected,
    JobNotFound,
    MalformedResponse,
    PageSizeRejected,
    PermissionDenied,
    PleoThrottled,
    PleoUnavailable,
    TransientPleoError,
)
from pleo_scope.models import ExportJob, ItemPage, NotJson, decode_json, parse_job, parse_page
from pleo_scope.pacing import Pacer
from pleo_scope.ports import PagePace, PleoStats, RetryDeferred
from pleo_scope.rate_budget import RequestSlots, SlotUnavailable
from pleo_scope.tls import shared_tls_context

USER_AGENT = "pleo-export-scope/0.1"

# httpcore logs at DEBUG what goes wrong while sending request headers, the header value
# (Authorization included) in the exception's text. Keep it quiet whatever level the
# function runs at, as aws/clients.py does for botocore.
logging.getLogger("httpcore").setLevel(logging.INFO)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts per request for 429, 5xx, network faults and malformed bodies together."""
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0
    """A longer wait (Retry-After or back-off) ends the invocation with a continuation."""


@dataclass(frozen=True, slots=True)
class ClientSettings:
    base_url: str
    page_size: int = 100
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_requests_per_minute: float | None = None
    """Every request of the client (retries and re-reads included) is paced under it;
    None: unpaced. Settings.from_env sets PLEO_MAX_REQUESTS_PER_MINUTE (default 500)."""

    @property
    def worst_case_request_seconds(self) -> float:
        return self.connect_timeout + self.read_timeout


class PleoClient:
    def __init__(
        self,
        settings: ClientSettings,
        auth: httpx.Auth,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        slots: RequestSlots | None = None,
    ) -> None:
        """`auth`: the tenant's (pleo_scope.auth). `slots`: the rate budget every request
        takes a slot from (the tenant's fleet-wide budget); None: this client paces itself
        under `max_requests_per_minute`."""
        self.settings = settings
        self.stats = PleoStats()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        # Without a fleet budget, one pacer per client, and one client per process: the pace
        # holds across the requests of an invocation and the invocations a container serves.
        self._slots = slots or Pacer(settings.max_requests_per_minute, self._clock)
        self._http = httpx.Client(
            base_url=settings.base_url,
            timeout=httpx.Timeout(
                settings.read_timeout,
                connect=settings.connect_timeout,
                pool=settings.connect_timeout,
            ),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            auth=auth,
            verify=shared_tls_context(),
            transport=transport,
            # Every request sent, one the Auth re-sends after a 401 included, takes a slot.
            event_hooks={"request": [self._take_slot]},
        )

    def close(self) -> None:
        self._http.close()

    def get_job(self, job: JobRef, budget: Budget) -> ExportJob:
        job_id = job.job_id
        return self._call(
            f"/v3/export-jobs/{job_id}",
            {},
            budget,
            parse=lambda body, raw: parse_job(body, job_id),
            on_400=lambda: BadRequest(f"Pleo rejected the request for export job {job_id} (400)"),
            what=f"export job {job_id}",
        )

    def pace(self, job: JobRef) -> PagePace:
        limit = self.settings.max_requests_per_minute
        return PagePace(self.settings.page_size, 60.0 / limit if limit else 0.0)

    def get_items_page(self, job: JobRef, after: str | None, budget: Budget) -> ItemPage:
        job_id = job.job_id
        params: dict[str, str | int] = {"limit": self.settings.page_size}
        if after is not None:
            params["after"] = after
        return self._call(
            f"/v3/export-jobs/{job_id}/items",
            params,
            budget,
            parse=lambda body, raw: parse_page(body, job_id, raw),
            on_400=lambda: PageSizeRejected(
                f"Pleo rejected the items request of export job {job_id} (400):"
                f" check PLEO_PAGE_SIZE={self.settings.page_size} against the API maximum"
            ),
            what=f"items of export job {job_id}",
        )

    # -- one logical call: bounded retries within the budget ------------------------------

    def _call[T](
        self,
        path: str,
        params: dict[str, str | int],
        budget: Budget,
        *,
        parse: Callable[[object, bytes], T],
        on_400: Callable[[], Exception],
        what: str,
    ) -> T:
        policy = self.settings.retry
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(policy.max_attempts),
            wait=self._wait_seconds,
            sleep=lambda seconds: self._sleep_within(seconds, budget),
            reraise=True,
        )
        attempts = 0

        def attempt() -> T:
            # A retry counts once it reaches Pleo: not when a deferral (a wait past the cap
            # or the budget) or the lack of time for a request prevented it.
            nonlocal attempts
            attempts += 1
            requests = self.stats.requests
            try:
                return self._attempt(path, params, budget, parse, on_400, what)
            finally:
                if attempts > 1 and self.stats.requests > requests:
                    self.stats.retries += 1

        result: T = retrying(attempt)
        return result

    def _attempt[T](
        self,
        path: str,
        params: dict[str, str | int],
        budget: Budget,
        parse: Callable[[object, bytes], T],
        on_400: Callable[[], Exception],
        what: str,
    ) -> T:
        response = self._send(path, params, budget, what)
        status = response.status_code
        if status == 401:  # the Auth has renewed the credential once already, if it could
            raise CredentialRejected(
                f"Pleo answered 401 for {what}: the credential is refused, also once read again"
            )
        if status == 200:
            return parse(_json_body(response, what), response.content)
        if status == 429:
            self.stats.throttles += 1
            wait = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            raise PleoThrottled(f"Pleo answered 429 for {what}", retry_after=wait)
        if status >= 500:
            raise PleoUnavailable(f"Pleo answered {status} for {what}")
        if status == 404:
            raise JobNotFound(f"Pleo answered 404 for {what}: the job does not exist (any more)")
        if status == 403:
            raise PermissionDenied(
                f"Pleo answered 403 for {what}: the credential lacks scope export-jobs:read"
            )
        if status == 400:
            raise on_400()
        raise BadRequest(f"Pleo answered unexpected status {status} for {what}")

    def _send(
        self, path: str, params: dict[str, str | int], budget: Budget, what: str
    ) -> httpx.Response:
        try:
            return self._http.get(path, params=params, extensions={_CALL: _Call(budget, what)})
        except httpx.TimeoutException as exc:
            self.stats.timeouts += 1
            raise PleoUnavailable(f"request for {what} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise PleoUnavailable(f"request for {what} failed ({type(exc).__name__})") from None

    def _take_slot(self, request: httpx.Request) -> None:
        call: _Call = request.extensions[_CALL]
        try:
            waited = self._slots.take(call.budget, self.settings.worst_case_request_seconds)
        except SlotUnavailable as unavailable:
            raise RetryDeferred(
                unavailable.wait_seconds, f"no time left for a request for {call.what}"
            ) from None
        self.stats.paced_seconds += waited
        self.stats.requests += 1

    # -- tenacity hooks -------------------------------------------------------------------

    def _wait_seconds(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, PleoThrottled) and error.retry_after is not None:
            return error.retry_after
        # Full jitter: uniform in [0, min(max, base * 2^n)]. Our own back-off stays under the
        # cap, so only Pleo's Retry-After can ask for more than an invocation may sleep.
        policy = self.settings.retry
        ceiling = min(
            policy.backoff_max,
            policy.max_retry_after,
            policy.backoff_base * 2 ** (state.attempt_number - 1),
        )
        return self._rng.uniform(0.0, ceiling)

    def _sleep_within(self, seconds: float, budget: Budget) -> None:
        if seconds > self.settings.retry.max_retry_after:
            raise RetryDeferred(seconds, "Pleo asked for a wait longer than the cap")
        if not budget.allows(seconds + self.settings.worst_case_request_seconds):
            raise RetryDeferred(seconds, "the wait does not fit in the time budget")
        self._clock.sleep(seconds)


_CALL = "pleo_scope.call"
"""The request extension that tells the request hook whose budget the request spends."""


@dataclass(frozen=True, slots=True)
class _Call:
    budget: Budget
    what: str


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, TransientPleoError) and not isinstance(error, RetryDeferred)


def _json_body(response: httpx.Response, what: str) -> Any:
    try:
        return decode_json(response.content)
    except NotJson as error:
        raise MalformedResponse(f"response for {what} {error}") from None
    except ValueError:
        raise MalformedResponse(f"response for {what} is not JSON") from None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable.

    A number that is not finite (`inf`, `Infinity`, `1e999`, `nan`: `float()` reads them all)
    is `math.inf`, longer than any cap: the call is deferred, never slept on.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else math.inf
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
