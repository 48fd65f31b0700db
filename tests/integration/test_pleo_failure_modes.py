"""Every failure mode of pleo-api.md ("What goes wrong in practice"), over real HTTP against the
simulator: each asserts the exact outcome and the number of requests Pleo received."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import pytest

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.errors import (
    CredentialRejected,
    JobNotFound,
    MalformedResponse,
    MissingCursor,
    PageSizeRejected,
    PermissionDenied,
    PleoThrottled,
    PleoUnavailable,
    RepeatedCursor,
    TooManyPages,
)
from pleo_scope.pleo_client import ClientSettings, PleoClient
from pleo_scope.walk import PageWalker
from tests.support import START, FakeClock, make_client, reference_scope, walk_scope_bytes
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.jobs import make_item

JOB = "33333333-0000-4000-8000-000000000003"
ITEMS = 450  # 5 pages of 100


@pytest.fixture
def job(simulator: PleoSimulator) -> SimJob:
    return simulator.add_job(SimJob(JOB, generated_items=ITEMS))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(sim_url: str, clock: FakeClock, job: SimJob) -> PleoClient:
    return make_client(base_url=sim_url, clock=clock, read_timeout=0.3)


def items_of(job: SimJob) -> list[dict[str, Any]]:
    return [job.item_at(i) for i in range(job.item_count)]


def walk(client: PleoClient, clock: FakeClock) -> tuple[bytes, int]:
    return walk_scope_bytes(client, JOB, Budget.unbounded(clock))


def at(*numbers: int) -> frozenset[int]:
    return frozenset(numbers)


# --- 429 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("7", 7.0), (format_datetime(START.replace(second=12), usegmt=True), 12.0)],
    ids=["seconds", "http-date"],
)
def test_429_honours_retry_after(
    simulator: PleoSimulator,
    client: PleoClient,
    clock: FakeClock,
    job: SimJob,
    retry_after: str,
    expected_sleep: float,
) -> None:
    simulator.inject(JOB, Fault("status", at(2), status=429, retry_after=retry_after))
    jsonl, pages = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert pages == 5
    assert clock.sleeps == [expected_sleep]
    assert simulator.request_count(JOB) == 6


def test_429_without_retry_after_backs_off(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    simulator.inject(JOB, Fault("status", at(1, 2, 3), status=429))
    jsonl, _ = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert len(clock.sleeps) == 3
    assert all(0 <= s <= 2.0 for s in clock.sleeps)
    assert simulator.request_count(JOB) == 8


def test_429_forever_is_pleo_throttled_after_bounded_attempts(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("status", status=429, retry_after="1"))
    with pytest.raises(PleoThrottled, match="429"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 5
    assert clock.sleeps == [1.0] * 4


def test_429_longer_than_the_cap_returns_a_continuation(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    simulator.inject(JOB, Fault("status", at(3), status=429, retry_after="3600"))
    walker = PageWalker(client, JobRef(JOB), Budget.unbounded(clock))
    assert len(list(walker)) == 2
    assert walker.outcome is not None
    assert (walker.outcome.reason, walker.outcome.wait_seconds) == ("throttled", 3600.0)
    assert clock.sleeps == []
    assert simulator.request_count(JOB) == 3


# --- 5xx, resets, time-outs, hangs -------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_backoff(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob, status: int
) -> None:
    simulator.inject(JOB, Fault("status", at(2, 3), status=status))
    jsonl, _ = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert len(clock.sleeps) == 2
    assert simulator.request_count(JOB) == 7


def test_5xx_forever_is_pleo_unavailable(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("status", status=503))
    with pytest.raises(PleoUnavailable, match="503"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 5


def test_dropped_connection_is_retried(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    simulator.inject(JOB, Fault("drop", at(4)))
    jsonl, _ = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert simulator.request_count(JOB) == 6


def test_read_timeout_on_a_hang_is_retried(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    simulator.inject(JOB, Fault("hang", at(2), seconds=1.0))  # client read time-out is 0.3 s
    jsonl, _ = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert simulator.request_count(JOB) == 6


def test_a_server_that_always_hangs_is_pleo_unavailable(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("hang", seconds=0.6))
    with pytest.raises(PleoUnavailable, match="timed out"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 5


# --- bodies --------------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_retried(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    simulator.inject(JOB, Fault("malformed", at(3)))
    jsonl, _ = walk(client, clock)
    assert jsonl == reference_scope(items_of(job))
    assert simulator.request_count(JOB) == 6


@pytest.mark.parametrize("kind", ["malformed", "missing_fields"])
def test_a_body_that_stays_malformed_is_a_typed_error(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, kind: Any
) -> None:
    simulator.inject(JOB, Fault(kind, on_requests=None))
    with pytest.raises(MalformedResponse):
        walk(client, clock)
    assert simulator.request_count(JOB) == 5


# --- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["null_cursor", "empty_cursor"])
def test_has_next_page_without_a_cursor_fails_loudly(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, kind: Any
) -> None:
    simulator.inject(JOB, Fault(kind, at(2)))
    with pytest.raises(MissingCursor, match="page 2"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 2


def test_a_cursor_that_comes_back_later_fails_loudly(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("repeat_cursor", at(3)))  # page 3 points back at page 2: A, B, A
    with pytest.raises(RepeatedCursor, match="page 3"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 3


def test_empty_pages_with_a_next_page_continue(
    simulator: PleoSimulator, sim_url: str, clock: FakeClock
) -> None:
    job = simulator.add_job(SimJob(JOB, generated_items=30, page_sizes=[10, 0, 0, 10, 0, 10]))
    client_ = make_client(base_url=sim_url, clock=clock)
    jsonl, pages = walk(client_, clock)
    assert pages == 6
    assert jsonl == reference_scope(items_of(job))


def test_more_pages_than_the_maximum_fails_loudly(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    walker = PageWalker(client, JobRef(JOB), Budget.unbounded(clock), max_pages=3)
    with pytest.raises(TooManyPages, match="maximum of 3"):
        list(walker)
    assert simulator.request_count(JOB) == 3


# --- data that moves under the walk ----------------------------------------------------------


def test_duplicates_across_pages_later_observation_wins(
    simulator: PleoSimulator, sim_url: str, clock: FakeClock
) -> None:
    a, b, c = "aaaaaaaa-0000-4000-8000-000000000000", "bbbb0000-0000-4000-8000-000000000000", "c"
    items = [
        make_item(JOB, b, "pending"),
        make_item(JOB, a, "pending"),
        make_item(JOB, c, "pending"),
        make_item(JOB, a, "pending"),  # same status again, on page 2
        make_item(JOB, b, "successful"),  # finished later: out of scope
        make_item(JOB, c, "in_progress"),  # changed, still in scope
    ]
    simulator.add_job(SimJob(JOB, items=items))
    client_ = make_client(base_url=sim_url, clock=clock, page_size=3)
    jsonl, pages = walk(client_, clock)
    assert pages == 2
    assert jsonl == reference_scope(items)
    assert [line.count(b'"status"') for line in jsonl.splitlines()] == [1, 1]
    assert b'"accountingEntryId":"c","exportJobId"' in jsonl
    assert b'"in_progress"' in jsonl


def test_items_changing_status_mid_walk(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    early = job.item_at(10)  # on page 1, already fetched when it changes
    late = job.item_at(420)  # on page 5, fetched after it changes
    simulator.inject(
        JOB,
        Fault(
            "set_status",
            at(3),
            statuses={
                early["accountingEntryId"]: "successful",
                late["accountingEntryId"]: "failed",
            },
        ),
    )
    jsonl, _ = walk(client, clock)
    observed = items_of(job)  # now with both changes
    observed[10] = early  # the walk saw item 10 before its change
    assert jsonl == reference_scope(observed)
    assert late["accountingEntryId"].encode() not in jsonl


def test_items_appended_mid_walk_are_in_scope(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock, job: SimJob
) -> None:
    extra = [make_item(JOB, f"ffffffff-0000-4000-8000-{n:012d}", "pending") for n in range(80)]
    simulator.inject(JOB, Fault("append", at(5), items=extra))
    jsonl, pages = walk(client, clock)
    assert pages == 6
    assert jsonl == reference_scope(items_of(job))
    assert jsonl.count(b"ffffffff-") == 80


# --- job and credential failures -------------------------------------------------------------


def test_job_deleted_mid_walk_is_job_not_found(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("delete_job", at(3)))
    with pytest.raises(JobNotFound, match=JOB):
        walk(client, clock)
    assert simulator.request_count(JOB) == 3


def test_unknown_job_is_job_not_found(client: PleoClient, clock: FakeClock) -> None:
    with pytest.raises(JobNotFound, match="44444444"):
        client.get_job(JobRef("44444444-0000-4000-8000-000000000004"), Budget.unbounded(clock))


def test_credential_revoked_mid_walk_is_rejected_once_read_again(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.inject(JOB, Fault("revoke", at(3)))
    with pytest.raises(CredentialRejected) as caught:
        walk(client, clock)
    assert "sim-api-key" not in str(caught.value)
    # Page 3 refused; the secret read again is the same key: not sent again.
    assert simulator.request_count(JOB) == 3


def test_missing_scope_is_permission_denied(
    simulator: PleoSimulator, client: PleoClient, clock: FakeClock
) -> None:
    simulator.api_keys["sim-api-key"] = {"export-items:read"}
    with pytest.raises(PermissionDenied, match="export-jobs:read"):
        walk(client, clock)
    assert simulator.request_count(JOB) == 1


def test_bearer_token_is_accepted(sim_url: str, clock: FakeClock, job: SimJob) -> None:
    client_ = PleoClient(
        ClientSettings(sim_url), CredentialAuth.of(Credential("accessToken", "sim-access-token"))
    )
    assert client_.get_job(JobRef(JOB), Budget.unbounded(clock)).status == "in_progress"


def test_page_size_above_the_maximum_is_a_configuration_error(
    simulator: PleoSimulator, sim_url: str, clock: FakeClock, job: SimJob
) -> None:
    client_ = make_client(base_url=sim_url, clock=clock, page_size=5000)
    with pytest.raises(PageSizeRejected, match="PLEO_PAGE_SIZE=5000"):
        walk(client_, clock)
    assert simulator.request_count(JOB) == 1
