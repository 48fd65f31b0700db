"""The real client and walker against the simulator's logic in memory (no sockets)."""

from __future__ import annotations

import pytest

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.errors import CredentialRejected, PleoThrottled, PleoUnavailable
from pleo_scope.pleo_client import ClientSettings, PleoClient, RetryPolicy
from pleo_scope.ports import WalkPosition
from pleo_scope.scope import ScopeBuilder
from pleo_scope.walk import PageWalker
from tests.support import FakeClock, make_client, reference_scope, walk_scope_bytes
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.transport import in_memory_transport

JOB = "11111111-0000-4000-8000-000000000001"


@pytest.fixture
def sim() -> PleoSimulator:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=250))
    return simulator


def all_items(sim: PleoSimulator) -> list[dict[str, object]]:
    job = sim.job(JOB)
    return [job.item_at(i) for i in range(job.item_count)]


def test_throttle_longer_than_the_cap_ends_the_walk_with_a_continuation(sim: PleoSimulator) -> None:
    sim.inject(JOB, Fault("status", frozenset({2}), status=429, retry_after="120"))
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock)
    walker = PageWalker(client, JobRef(JOB), Budget.unbounded(clock))
    pages = list(walker)
    assert len(pages) == 1
    assert walker.outcome is not None
    assert walker.outcome.reason == "throttled"
    assert walker.outcome.wait_seconds == 120
    assert walker.outcome.position == pages[0].next_position
    assert clock.sleeps == []  # never slept into the wait


def test_wait_that_does_not_fit_the_budget_is_not_slept(sim: PleoSimulator) -> None:
    sim.inject(JOB, Fault("status", frozenset({3}), status=429, retry_after="30"))
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock)
    walker = PageWalker(client, JobRef(JOB), Budget.from_remaining(clock, 20.0))
    pages = list(walker)
    assert [p.number for p in pages] == [1, 2]
    assert walker.outcome is not None
    assert (walker.outcome.reason, walker.outcome.wait_seconds) == ("throttled", 30.0)
    assert clock.sleeps == []


def test_no_request_starts_without_time_for_its_worst_case(sim: PleoSimulator) -> None:
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock, read_timeout=5.0)
    walker = PageWalker(client, JobRef(JOB), Budget.from_remaining(clock, 5.5))  # < 1 s + 5 s
    assert list(walker) == []
    assert walker.outcome is not None
    assert walker.outcome.reason == "throttled"
    assert sim.request_count(JOB) == 0


def test_walk_stops_on_the_time_budget_and_resumes_to_the_same_scope(sim: PleoSimulator) -> None:
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock, page_size=50)
    budget = Budget.from_remaining(clock, 100.0)
    builder = ScopeBuilder()
    walker = PageWalker(client, JobRef(JOB), budget, safety_margin=1.0)
    for fetched in walker:
        builder.add_items(fetched.page.items)
        clock.sleep(40.0)  # the caller's checkpoint is slow
    assert walker.outcome is not None
    assert walker.outcome.reason == "time_budget"
    assert walker.outcome.position.pages_fetched == 2
    second = PageWalker(client, JobRef(JOB), Budget.unbounded(clock), start=walker.outcome.position)
    for fetched in second:
        builder.add_items(fetched.page.items)
    assert second.outcome is not None
    assert second.outcome.done
    assert second.outcome.position.pages_fetched == 5
    assert builder.build().jsonl == reference_scope(all_items(sim))


def test_a_rotated_secret_is_read_again_after_a_401(sim: PleoSimulator) -> None:
    sim.api_keys = {"new-key": {"export-jobs:read"}}

    class RotatingSource:
        def __init__(self) -> None:
            self.fetches: list[bool] = []

        def get(self, *, force_fetch: bool = False) -> Credential:
            self.fetches.append(force_fetch)
            return Credential("apiKey", "new-key" if force_fetch else "old-key")

    source = RotatingSource()
    client = PleoClient(
        ClientSettings("http://pleo.invalid"),
        CredentialAuth(source),
        transport=in_memory_transport(sim),
    )
    assert client.get_job(JobRef(JOB), Budget.unbounded(FakeClock())).status == "in_progress"
    assert source.fetches == [False, True]
    assert sim.request_count(JOB) == 2
    assert client.stats.requests == 2  # the re-sent request took its slot too


def test_a_401_with_the_same_credential_read_again_is_rejected_without_a_resend(
    sim: PleoSimulator,
) -> None:
    sim.api_keys = {}
    client = make_client(transport=in_memory_transport(sim))
    with pytest.raises(CredentialRejected, match="401") as caught:
        client.get_job(JobRef(JOB), Budget.unbounded(FakeClock()))
    assert "sim-api-key" not in str(caught.value)
    assert sim.request_count(JOB) == 1  # the same credential would be refused again


def test_a_renewed_credential_refused_too_is_rejected_after_one_resend(
    sim: PleoSimulator,
) -> None:
    sim.api_keys = {}

    class EverNewSource:
        def __init__(self) -> None:
            self.fetches = 0

        def get(self, *, force_fetch: bool = False) -> Credential:
            self.fetches += 1
            return Credential("accessToken", f"token-{self.fetches}")

    source = EverNewSource()
    client = PleoClient(
        ClientSettings("http://pleo.invalid"),
        CredentialAuth(source),
        transport=in_memory_transport(sim),
    )
    with pytest.raises(CredentialRejected, match="401") as caught:
        client.get_job(JobRef(JOB), Budget.unbounded(FakeClock()))
    assert "token-" not in str(caught.value)
    assert (source.fetches, sim.request_count(JOB)) == (2, 2)  # renewed once, never looped


def test_backoff_is_bounded_full_jitter(sim: PleoSimulator) -> None:
    sim.inject(JOB, Fault("status", status=429, endpoint="job"))  # no Retry-After, forever
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock, max_attempts=5)
    with pytest.raises(PleoThrottled):
        client.get_job(JobRef(JOB), Budget.unbounded(clock))
    assert len(clock.sleeps) == 4
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= min(20.0, 0.5 * 2 ** (attempt - 1))
    assert client.stats.throttles == 5
    assert client.stats.retries == 4


def test_back_off_never_exceeds_the_retry_after_cap(sim: PleoSimulator) -> None:
    sim.inject(JOB, Fault("status", status=503, endpoint="job"))
    clock = FakeClock()
    client = PleoClient(
        ClientSettings(
            "http://pleo.invalid",
            retry=RetryPolicy(max_attempts=8, backoff_base=4.0, max_retry_after=1.0),
        ),
        CredentialAuth.of(Credential("apiKey", "sim-api-key")),
        clock=clock,
        transport=in_memory_transport(sim),
    )
    with pytest.raises(PleoUnavailable):  # retried to the end, never deferred
        client.get_job(JobRef(JOB), Budget.unbounded(clock))
    assert len(clock.sleeps) == 7
    assert max(clock.sleeps) <= 1.0


def test_resume_from_a_position_fetches_only_the_rest(sim: PleoSimulator) -> None:
    client = make_client(transport=in_memory_transport(sim))
    budget = Budget.unbounded(FakeClock())
    first = next(iter(PageWalker(client, JobRef(JOB), budget)))
    start = WalkPosition(first.page.end_cursor, 1)
    before = sim.request_count(JOB)
    _, pages = walk_scope_bytes_from(client, budget, start)
    assert pages == 3
    assert sim.request_count(JOB) - before == 2


def walk_scope_bytes_from(
    client: PleoClient, budget: Budget, start: WalkPosition
) -> tuple[bytes, int]:
    walker = PageWalker(client, JobRef(JOB), budget, start=start)
    builder = ScopeBuilder()
    for fetched in walker:
        builder.add_items(fetched.page.items)
    assert walker.outcome is not None
    return builder.build().jsonl, walker.outcome.position.pages_fetched


def test_whole_walk_matches_the_reference(sim: PleoSimulator) -> None:
    client = make_client(transport=in_memory_transport(sim), page_size=64)
    jsonl, pages = walk_scope_bytes(client, JOB, Budget.unbounded(FakeClock()))
    assert pages == 4
    assert jsonl == reference_scope(all_items(sim))
