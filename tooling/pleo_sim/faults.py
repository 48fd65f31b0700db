"""Faults the simulator injects on demand, per job and per request number.

Request numbers count every request a job receives (job and items endpoints), from 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal[
    "status",  # answer `status` (429 with `retry_after`, 5xx, 401, 404, 400, ...)
    "latency",  # answer normally after `seconds`
    "hang",  # hold the request `seconds`, then close it unanswered
    "drop",  # close the connection without an answer
    "malformed",  # a body that is not JSON
    "missing_fields",  # JSON without `data`/`pagination`
    "null_cursor",  # hasNextPage true with a null endCursor
    "empty_cursor",  # hasNextPage true with endCursor ""
    "repeat_cursor",  # endCursor = the endCursor of the first items page (A, B, A)
    "set_status",  # before answering, set `statuses` (entry id -> status) for good
    "append",  # before answering, append `items` to the job for good
    "delete_job",  # before answering, delete the job for good (404 from now on)
    "revoke",  # before answering, revoke every credential for good (401 from now on)
    "set_job_status",  # before answering, set the job's status to `job_status` for good
]
Endpoint = Literal["job", "items", "any"]


@dataclass
class Fault:
    kind: FaultKind
    on_requests: frozenset[int] | None = None
    """Request numbers it fires on; None = every request (see `times`, `probability`)."""
    endpoint: Endpoint = "items"
    times: int | None = None
    """Fire at most this many times."""
    probability: float = 1.0
    """Chance of firing on a matching request (the simulator's RNG is seeded)."""
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    statuses: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    job_status: str = "failed"
    """With `set_job_status`: what Pleo did to the job (failed it, expired it)."""

    def matches(self, request_number: int, endpoint: Endpoint) -> bool:
        if self.endpoint not in ("any", endpoint):
            return False
        if self.times is not None and self.times <= 0:
            return False
        return self.on_requests is None or request_number in self.on_requests

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Fault:
        """Build a fault from the admin API's JSON (`onRequests` as a list)."""
        on_requests = document.get("onRequests")
        return cls(
            kind=document["kind"],
            on_requests=frozenset(on_requests) if on_requests is not None else None,
            endpoint=document.get("endpoint", "items"),
            times=document.get("times"),
            probability=float(document.get("probability", 1.0)),
            status=int(document.get("status", 500)),
            retry_after=document.get("retryAfter"),
            seconds=float(document.get("seconds", 0.0)),
            statuses=dict(document.get("statuses", {})),
            items=list(document.get("items", [])),
            job_status=str(document.get("jobStatus", "failed")),
        )
