"""Pacing under Pleo's rate limit, on a fake clock: minutes of requests in no time."""

from __future__ import annotations

import pytest

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.pacing import Pacer
from pleo_scope.pleo_client import PleoClient
from pleo_scope.ports import RetryDeferred
from tests.support import (
    FakeClock,
    StampingTransport,
    make_client,
    most_in_any_window,
    walk_scope_bytes,
)
from tooling.pleo_sim import Fault, PleoSimulator, RateLimit, SimJob
from tooling.pleo_sim.transport import in_memory_transport

JOB = "77777777-0000-4000-8000-000000000007"


def paced_client(
    simulator: PleoSimulator, clock: FakeClock, per_minute: float | None
) -> tuple[PleoClient, StampingTransport]:
    transport = StampingTransport(in_memory_transport(simulator), clock)
    client = make_client(
        transport=transport, clock=clock, page_size=10, max_requests_per_minute=per_minute
    )
    return client, transport


def test_the_pacer_spaces_request_starts_evenly_and_only_when_needed() -> None:
    clock = FakeClock()
    pacer = Pacer(120, clock)  # one start every 0.5 s
    assert [pacer.acquire() for _ in range(3)] == [0.0, 0.5, 0.5]
    clock.elapsed += 2.0  # a slow request: the next slot is long past
    assert pacer.delay() == 0.0
    assert pacer.acquire() == 0.0
    assert pacer.delay() == 0.5
    assert Pacer(None, clock).delay() == 0.0


@pytest.mark.parametrize("per_minute", [500, 100])
def test_a_long_walk_stays_under_pleos_limit_with_no_429(per_minute: int) -> None:
    clock = FakeClock()
    simulator = PleoSimulator(rate_limit=RateLimit(600, 60.0), clock=clock.monotonic)
    simulator.add_job(SimJob(JOB, generated_items=9_000))  # 900 pages: 1.5 minutes of limit
    client, transport = paced_client(simulator, clock, per_minute)

    _, pages = walk_scope_bytes(client, JOB, Budget.unbounded(clock))

    assert pages == 900
    assert [r.status for r in simulator.log] == [200] * 900
    assert client.stats.throttles == 0
    assert most_in_any_window(transport.starts, 60.0) <= per_minute + 1
    assert clock.elapsed == pytest.approx(899 * 60.0 / per_minute)
    assert client.stats.paced_seconds == pytest.approx(clock.elapsed)


def test_the_same_walk_unpaced_runs_into_the_limit() -> None:
    """The counter-proof: without pacing, the simulator's limit does bite."""
    clock = FakeClock()
    simulator = PleoSimulator(rate_limit=RateLimit(600, 60.0), clock=clock.monotonic)
    simulator.add_job(SimJob(JOB, generated_items=9_000))
    client, _ = paced_client(simulator, clock, None)

    walk_scope_bytes(client, JOB, Budget.unbounded(clock))

    refused = [r for r in simulator.log if r.status == 429]
    assert refused
    assert client.stats.throttles == len(refused)
    assert 60.0 in clock.sleeps  # Retry-After: until the window's oldest request leaves it


def test_retries_and_the_job_check_are_paced_too() -> None:
    clock = FakeClock()
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=30))
    simulator.inject(JOB, Fault("status", frozenset({2, 3}), status=503, endpoint="any"))
    client, transport = paced_client(simulator, clock, 60)  # one start per second

    client.get_job(JobRef(JOB), Budget.unbounded(clock))
    walk_scope_bytes(client, JOB, Budget.unbounded(clock))

    assert len(transport.starts) == 6  # job, 503, 503, then 3 pages
    gaps = [b - a for a, b in zip(transport.starts, transport.starts[1:], strict=False)]
    assert min(gaps) >= 1.0


def test_a_slot_that_does_not_fit_the_budget_defers_without_a_request() -> None:
    clock = FakeClock()
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=30))
    client, transport = paced_client(simulator, clock, 6)  # one start per 10 s
    client.get_job(JobRef(JOB), Budget.unbounded(clock))
    with pytest.raises(RetryDeferred) as deferred:
        client.get_job(JobRef(JOB), Budget.from_remaining(clock, 12.0))  # 10 s + 6 s worst case
    assert deferred.value.wait_seconds == pytest.approx(10.0)
    assert len(transport.starts) == 1
