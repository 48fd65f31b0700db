from __future__ import annotations

import math

import pytest

from pleo_scope.clock import Budget
from pleo_scope.contract import MAX_WAIT_SECONDS, Continuing, JobRef, LoopTicket
from pleo_scope.errors import PleoUnavailable
from pleo_scope.pleo_client import parse_retry_after
from pleo_scope.ports import RetryDeferred
from pleo_scope.service import ScopeJobService
from pleo_scope.walk import PageWalker
from tests.fakes import (
    MemoryArchive,
    MemoryCheckpoints,
    MemoryLedger,
    MemoryQueue,
    RecordingHandOver,
)
from tests.support import START, FakeClock, make_client, reference_scope
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.transport import in_memory_transport

JOB = "22222222-0000-4000-8000-000000000002"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Mon, 23 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 23 Nov 2026 11:59:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", 0.0),
        # float() reads these; none is a finite wait: longer than any cap.
        ("inf", math.inf),
        ("Infinity", math.inf),
        ("-inf", math.inf),
        ("1e999", math.inf),
        ("nan", math.inf),
        ("NaN", math.inf),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, START) == seconds


@pytest.fixture
def sim() -> PleoSimulator:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=250))
    return simulator


@pytest.mark.parametrize("header", ["inf", "Infinity", "1e999", "nan", "1e300"])
def test_a_retry_after_past_any_bound_defers_with_a_bounded_integer_wait(
    sim: PleoSimulator, header: str
) -> None:
    sim.inject(JOB, Fault("status", frozenset({2}), status=429, retry_after=header))
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock)
    walker = PageWalker(client, JobRef(JOB), Budget.unbounded(clock))
    assert [page.number for page in walker] == [1]
    assert walker.outcome is not None
    assert (walker.outcome.reason, walker.outcome.wait_seconds) == ("throttled", MAX_WAIT_SECONDS)
    assert clock.sleeps == []  # never slept on
    assert (client.stats.requests, client.stats.retries, client.stats.throttles) == (2, 0, 1)


def test_a_deferral_is_finite_whatever_it_is_given() -> None:
    for wait in (math.inf, math.nan, -math.inf, 1e300, -5.0):
        assert 0.0 <= RetryDeferred(wait, "test").wait_seconds <= MAX_WAIT_SECONDS


def test_the_retry_counter_counts_only_retries_that_reached_pleo(sim: PleoSimulator) -> None:
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(sim), clock=clock, max_attempts=3)
    # A 429 asking for more than the cap: deferred, so no retry was made.
    sim.inject(JOB, Fault("status", frozenset({1}), status=429, retry_after="120", endpoint="job"))
    with pytest.raises(RetryDeferred):
        client.get_job(JobRef(JOB), Budget.unbounded(clock))
    assert (client.stats.requests, client.stats.retries) == (1, 0)
    # A 503, then a retry that succeeds: one retry.
    sim.inject(JOB, Fault("status", frozenset({2}), status=503, endpoint="job"))
    client.get_job(JobRef(JOB), Budget.unbounded(clock))
    assert (client.stats.requests, client.stats.retries) == (3, 1)
    # 503s to the end: two retries made after the first attempt.
    sim.inject(JOB, Fault("status", status=503, endpoint="job"))
    with pytest.raises(PleoUnavailable):
        client.get_job(JobRef(JOB), Budget.unbounded(clock))
    assert (client.stats.requests, client.stats.retries) == (6, 3)


def test_an_infinite_retry_after_mid_walk_is_a_continuation_and_a_later_run_completes(
    sim: PleoSimulator,
) -> None:
    sim.inject(JOB, Fault("status", frozenset({3}), status=429, retry_after="Infinity"))
    clock = FakeClock()
    archive = MemoryArchive()
    service = ScopeJobService(
        pleo=make_client(transport=in_memory_transport(sim), clock=clock),
        checkpoints=MemoryCheckpoints(),
        archive=archive,
        queue=MemoryQueue(),
        ledger=MemoryLedger(),
        hand_over=RecordingHandOver(),
        clock=clock,
    )
    result, stats = service.run(JobRef(JOB), Budget.unbounded(clock), "trigger")
    assert isinstance(result, Continuing)
    assert (result.phase, result.pages_fetched) == ("walking", 1)
    assert result.wait_seconds == MAX_WAIT_SECONDS
    assert isinstance(result.wait_seconds, int)
    assert (stats.pleo_retries, stats.pleo_throttles) == (0, 1)
    assert not [key for key in archive.objects if key.endswith(("scope.jsonl", "scope.json"))]
    assert service.queue.messages == []  # type: ignore[attr-defined]
    # The loop of the execution it handed over to goes on once the wait is over.
    final, _ = service.run(JobRef(JOB), Budget.unbounded(clock), "loop", LoopTicket(1, 1))
    assert final.done is True
    job = sim.job(JOB)
    assert archive.get_scope(JOB) == reference_scope([job.item_at(i) for i in range(250)])
