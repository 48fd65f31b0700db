"""The simulator's request handling, independent of any server: `handle()` maps a request to
a response. `server.py` serves it over real HTTP; `transport.py` serves it to httpx in memory.

Several companies (companies.py), each with its own jobs and credentials, and Pleo's OAuth
token endpoint (oauth.py). Without any of that it is the single-company simulator it always
was: `api_keys` and `access_tokens` are the default company's, every job is its."""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tooling.pleo_sim.companies import DEFAULT_COMPANY_ID, READ_SCOPE, SimCompany
from tooling.pleo_sim.faults import Endpoint, Fault
from tooling.pleo_sim.jobs import JsonLiteral, SimJob
from tooling.pleo_sim.oauth import (
    DEFAULT_ACCESS_LIFETIME,
    DEFAULT_REFRESH_LIFETIME,
    IssuedTokens,
    OAuthServer,
    TokenAnswer,
    TokenFault,
)
from tooling.pleo_sim.rate_meter import RateLimit, RateMeter, credential_of

__all__ = ["PleoSimulator", "RateLimit", "SimRequest", "SimResponse", "dumps"]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
ITEM_FILTER_STATUSES = frozenset({"pending", "in_progress", "failed", "successful", "abandoned"})


@dataclass(frozen=True)
class SimRequest:
    method: str
    target: str
    """Path with query string, as on the request line."""
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes = b""


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before acting."""
    action: Literal["respond", "drop", "hang"] = "respond"

    @classmethod
    def json(cls, status: int, document: Any, **headers: str) -> SimResponse:
        body = dumps(document).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})

    @classmethod
    def error(cls, status: int, message: str, **headers: str) -> SimResponse:
        return cls.json(status, {"type": "error", "message": message}, **headers)


@dataclass(frozen=True)
class LoggedRequest:
    job_id: str
    number: int
    endpoint: Endpoint
    query: dict[str, str]
    status: int
    action: str


@dataclass
class _JobState:
    job: SimJob
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    first_end_cursor: str | None = None
    cursor_serial: int = 0
    deleted: bool = False


class PleoSimulator:
    def __init__(
        self,
        *,
        api_keys: dict[str, set[str]] | None = None,
        access_tokens: dict[str, set[str]] | None = None,
        max_limit: int = 1000,
        seed: int = 0,
        rate_limit: RateLimit | None = None,
        rate_limit_per_credential: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`api_keys`/`access_tokens` map each credential the default company accepts to its
        scopes; `clock` (seconds) times the rate limits and the OAuth tokens' lifetimes.
        `rate_limit` counts every request together; `rate_limit_per_credential` each
        credential's on its own (`self.meter` counts them in sliding windows either way)."""
        self.companies: dict[str, SimCompany] = {
            DEFAULT_COMPANY_ID: SimCompany(
                DEFAULT_COMPANY_ID,
                api_keys=api_keys if api_keys is not None else {"sim-api-key": {READ_SCOPE}},
                access_tokens=(
                    access_tokens
                    if access_tokens is not None
                    else {"sim-access-token": {READ_SCOPE}}
                ),
            )
        }
        self.oauth = OAuthServer(clock)
        self.max_limit = max_limit
        self.log: list[LoggedRequest] = []
        self._jobs: dict[str, _JobState] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._clock = clock
        self.rate_limit = rate_limit
        self._admitted: deque[float] = deque()
        self.meter = RateMeter(clock, rate_limit_per_credential)

    # -- control ------------------------------------------------------------------------

    @property
    def api_keys(self) -> dict[str, set[str]]:
        """The default company's API keys (assignable, as tests revoke and restore them)."""
        return self.companies[DEFAULT_COMPANY_ID].api_keys

    @api_keys.setter
    def api_keys(self, value: dict[str, set[str]]) -> None:
        self.companies[DEFAULT_COMPANY_ID].api_keys = value

    @property
    def access_tokens(self) -> dict[str, set[str]]:
        return self.companies[DEFAULT_COMPANY_ID].access_tokens

    @access_tokens.setter
    def access_tokens(self, value: dict[str, set[str]]) -> None:
        self.companies[DEFAULT_COMPANY_ID].access_tokens = value

    def add_company(
        self,
        company_id: str,
        *,
        api_keys: dict[str, set[str]] | None = None,
        access_tokens: dict[str, set[str]] | None = None,
    ) -> SimCompany:
        """A company with its own static credentials (OAuth grants: `grant`)."""
        with self._lock:
            company = SimCompany(company_id, dict(api_keys or {}), dict(access_tokens or {}))
            self.companies[company_id] = company
        return company

    def grant(
        self,
        company_id: str,
        *,
        access_lifetime: float = DEFAULT_ACCESS_LIFETIME,
        refresh_lifetime: float = DEFAULT_REFRESH_LIFETIME,
    ) -> IssuedTokens:
        """Install the simulator's OAuth app in a company (what onboarding's authorization
        code + PKCE ends with): a fresh grant's tokens, lifetimes in seconds of `clock`."""
        with self._lock:
            self.companies.setdefault(company_id, SimCompany(company_id))
            return self.oauth.grant(
                company_id, access_lifetime=access_lifetime, refresh_lifetime=refresh_lifetime
            )

    def inject_token_fault(self, *faults: TokenFault) -> None:
        """Faults of the token endpoint, fired in order on its next requests."""
        with self._lock:
            self.oauth.faults.extend(faults)

    @property
    def token_requests(self) -> int:
        """Calls the token endpoint received, whatever their outcome."""
        with self._lock:
            return self.oauth.call_count

    def add_job(self, job: SimJob) -> SimJob:
        with self._lock:
            self.companies.setdefault(job.company_id, SimCompany(job.company_id))
            self._jobs[job.id] = _JobState(job)
        return job

    def inject(self, job_id: str, *faults: Fault) -> None:
        with self._lock:
            self._jobs[job_id].faults.extend(faults)

    def clear_faults(self, job_id: str) -> None:
        with self._lock:
            self._jobs[job_id].faults.clear()

    def set_rate_limit(self, rate_limit: RateLimit | None) -> None:
        with self._lock:
            self.rate_limit = rate_limit
            self._admitted.clear()

    def job(self, job_id: str) -> SimJob:
        return self._jobs[job_id].job

    def request_count(self, job_id: str, endpoint: Endpoint = "any") -> int:
        with self._lock:
            return sum(
                1 for r in self.log if r.job_id == job_id and endpoint in ("any", r.endpoint)
            )

    # -- handling -----------------------------------------------------------------------

    def handle(self, request: SimRequest) -> SimResponse:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: SimRequest) -> SimResponse:
        url = urlsplit(request.target)
        if url.path == TOKEN_PATH and request.method == "POST":
            return _token_response(self.oauth.token_request(request.headers, request.body))
        parts = [p for p in url.path.split("/") if p]
        if (
            request.method != "GET"
            or len(parts) not in (3, 4)
            or parts[:2] != ["v3", "export-jobs"]
        ):
            return SimResponse.error(404, f"no route for {request.method} {url.path}")
        if len(parts) == 4 and parts[3] != "items":
            return SimResponse.error(404, f"no route for {request.method} {url.path}")
        job_id = parts[2]
        endpoint: Endpoint = "items" if len(parts) == 4 else "job"
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        state = self._jobs.get(job_id)
        if state is None:
            return SimResponse.error(404, f"export job {job_id} not found")
        state.requests += 1
        response = (
            self._over_credential_limit(request.headers)
            or self._over_rate_limit()
            or self._respond(state, endpoint, query, request.headers)
        )
        self.log.append(
            LoggedRequest(job_id, state.requests, endpoint, query, response.status, response.action)
        )
        return response

    def _respond(
        self, state: _JobState, endpoint: Endpoint, query: dict[str, str], headers: dict[str, str]
    ) -> SimResponse:
        fired = [
            fault
            for fault in state.faults
            if fault.matches(state.requests, endpoint) and self._rng.random() < fault.probability
        ]
        for fault in fired:
            if fault.times is not None:
                fault.times -= 1
        delay = 0.0
        for fault in fired:  # lasting changes first: they shape the answer below
            if fault.kind == "set_status":
                state.job.status_overrides.update(fault.statuses)
            elif fault.kind == "append":
                state.job.items.extend(fault.items)
            elif fault.kind == "delete_job":
                state.deleted = True
            elif fault.kind == "set_job_status":
                state.job.status = fault.job_status
            elif fault.kind == "revoke":
                self.companies[state.job.company_id].revoke_static()
                self.oauth.revoke_company(state.job.company_id)
            elif fault.kind == "latency":
                delay += fault.seconds
        for fault in fired:  # then at most one fault that replaces the answer
            replaced = self._replacement(fault)
            if replaced is not None:
                replaced.delay += delay
                return replaced
        response = self._authorised(headers, state.job) or self._serve(state, endpoint, query)
        if response.status == 200 and endpoint == "items":
            response = self._distort_pagination(state, response, fired)
        response.delay += delay
        return response

    def _over_credential_limit(self, headers: dict[str, str]) -> SimResponse | None:
        wait = self.meter.arrive(credential_of(headers))
        if wait is None:
            return None
        return SimResponse.error(429, "rate limit per credential", **{"Retry-After": str(wait)})

    def _over_rate_limit(self) -> SimResponse | None:
        limit = self.rate_limit
        if limit is None:
            return None
        now = self._clock()
        while self._admitted and self._admitted[0] <= now - limit.per_seconds:
            self._admitted.popleft()
        if len(self._admitted) < limit.requests:
            self._admitted.append(now)
            return None
        wait = max(1, math.ceil(self._admitted[0] + limit.per_seconds - now))
        return SimResponse.error(
            429,
            f"rate limit of {limit.requests} per {limit.per_seconds:g}s",
            **{"Retry-After": str(wait)},
        )

    @staticmethod
    def _replacement(fault: Fault) -> SimResponse | None:
        if fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return SimResponse.error(fault.status, f"injected {fault.status}", **extra)
        if fault.kind == "hang":
            return SimResponse(0, delay=fault.seconds, action="hang")
        if fault.kind == "drop":
            return SimResponse(0, action="drop")
        if fault.kind == "malformed":
            return SimResponse(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        if fault.kind == "missing_fields":
            return SimResponse.json(200, {"items": []})
        return None

    def _authorised(self, headers: dict[str, str], job: SimJob) -> SimResponse | None:
        """None when the credential is good, has the read scope and is the job's company's;
        else the 401/403, or the 404 Pleo gives another company's job."""
        holder = self._credential_holder(headers.get("authorization", ""))
        if holder is None:
            return SimResponse.error(401, "unauthorized")
        company_id, scopes = holder
        if READ_SCOPE not in scopes:
            return SimResponse.error(403, f"missing scope {READ_SCOPE}")
        if company_id != job.company_id:
            return SimResponse.error(404, f"export job {job.id} not found")
        return None

    def _credential_holder(self, authorization: str) -> tuple[str, Set[str]] | None:
        """(company, scopes) of the credential in an Authorization header, or None."""
        scheme, _, credential = authorization.partition(" ")
        if scheme == "Bearer":
            for company in self.companies.values():
                if credential in company.access_tokens:
                    return company.id, company.access_tokens[credential]
            return self.oauth.authenticate(credential)
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(credential).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            if password != "":  # an API key is the user name with an empty password
                return None
            for company in self.companies.values():
                if user in company.api_keys:
                    return company.id, company.api_keys[user]
        return None

    def _serve(self, state: _JobState, endpoint: Endpoint, query: dict[str, str]) -> SimResponse:
        job = state.job
        if state.deleted:
            return SimResponse.error(404, f"export job {job.id} not found")
        if endpoint == "job":
            return SimResponse.json(200, {"data": job.as_resource()})
        return self._items_page(state, query)

    def _items_page(self, state: _JobState, query: dict[str, str]) -> SimResponse:
        job = state.job
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return SimResponse.error(400, "limit must be an integer")
        if not 1 <= limit <= self.max_limit:
            return SimResponse.error(400, f"limit must be between 1 and {self.max_limit}")
        status_filter = query.get("status")
        if status_filter is not None and status_filter not in ITEM_FILTER_STATUSES:
            return SimResponse.error(400, f"unknown status {status_filter}")
        if "offset" in query and ("after" in query or "before" in query):
            return SimResponse.error(400, "offset cannot be combined with after/before")
        after = query.get("after")
        offset, page_index = 0, 0
        if after is not None:
            decoded = _decode_cursor(after, job.id)
            if decoded is None:
                return SimResponse.error(400, "invalid cursor")
            offset, page_index = decoded
        elif "offset" in query:
            offset = int(query["offset"])
        size = limit
        if job.page_sizes is not None and page_index < len(job.page_sizes):
            size = job.page_sizes[page_index]
        if status_filter is None:
            total = job.item_count
            data = [job.item_at(i) for i in range(offset, min(offset + size, total))]
        else:  # fine for the small jobs the filter is tested on: it scans the whole job
            matching = [
                item
                for item in (job.item_at(i) for i in range(job.item_count))
                if item["status"] == status_filter
            ]
            total = len(matching)
            data = matching[offset : offset + size]
        end = offset + size
        has_next = end < total
        start_cursor = self._cursor(state, offset, page_index)
        end_cursor: str | None = self._cursor(state, min(end, total), page_index + 1)
        if not has_next and not job.last_end_cursor:
            end_cursor = None
        pagination = {
            "currentRequestPagination": {
                "after": after,
                "before": None,
                "limit": limit,
                "offset": None,
                "sortingKeys": [],
                "sortingOrder": [],
                "parameters": {"status": status_filter} if status_filter else {},
            },
            "hasNextPage": has_next,
            "hasPreviousPage": offset > 0,
            "startCursor": start_cursor,
            "endCursor": end_cursor,
            "total": total,
        }
        if state.first_end_cursor is None:
            state.first_end_cursor = end_cursor
        return SimResponse.json(200, {"data": data, "pagination": pagination})

    def _cursor(self, state: _JobState, offset: int, page_index: int) -> str:
        # Opaque to clients; every issued cursor is a distinct string.
        state.cursor_serial += 1
        serial = 0 if state.job.stable_cursors else state.cursor_serial
        raw = json.dumps({"j": state.job.id, "o": offset, "p": page_index, "s": serial})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _distort_pagination(
        state: _JobState, response: SimResponse, fired: list[Fault]
    ) -> SimResponse:
        kinds = {fault.kind for fault in fired}
        if not kinds & {"null_cursor", "empty_cursor", "repeat_cursor"}:
            return response
        document = json.loads(response.body)
        pagination = document["pagination"]
        pagination["hasNextPage"] = True
        if "null_cursor" in kinds:
            pagination["endCursor"] = None
        elif "empty_cursor" in kinds:
            pagination["endCursor"] = ""
        else:
            pagination["endCursor"] = state.first_end_cursor
        return SimResponse.json(200, document)


def dumps(document: Any, **options: Any) -> str:
    """json.dumps, with every `JsonLiteral` written as its text (`1e400`, `NaN`)."""
    literals: dict[str, str] = {}

    def placeholder(value: object) -> object:
        if not isinstance(value, JsonLiteral):
            raise TypeError(f"{type(value).__name__} is not JSON")
        token = f"\x00literal-{len(literals)}\x00"
        literals[json.dumps(token)] = value.text
        return token

    text = json.dumps(document, default=placeholder, **options)
    for quoted, literal in literals.items():
        text = text.replace(quoted, literal)
    return text


def _token_response(answer: TokenAnswer) -> SimResponse:
    if answer.document is None:
        return SimResponse(0, delay=answer.delay, action="drop")
    response = SimResponse.json(answer.status, answer.document, **answer.headers)
    response.delay = answer.delay
    return response


def _decode_cursor(cursor: str, job_id: str) -> tuple[int, int] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded))
        if document["j"] != job_id:
            return None
        return int(document["o"]), int(document["p"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
