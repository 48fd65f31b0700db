"""The Pleo client takes every request's slot from the fleet-wide budget: the job check, the
walk's pages and the retries; a slot further away than the invocation can wait ends it with a
continuation (RetryDeferred), before any request."""

from __future__ import annotations

import pytest

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.pleo_client import PleoClient
from pleo_scope.ports import PagePace, RetryDeferred
from pleo_scope.rate_budget import FleetBudget
from tests.fakes import InlineExecutor, MemoryRateBudgetStore
from tests.support import (
    FakeClock,
    StampingTransport,
    make_client,
    most_in_any_window,
    walk_scope_bytes,
)
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.transport import in_memory_transport

JOB = "99999999-0000-4000-8000-000000000009"


def budgeted_client(
    simulator: PleoSimulator, clock: FakeClock, budget: FleetBudget
) -> tuple[PleoClient, StampingTransport]:
    transport = StampingTransport(in_memory_transport(simulator), clock)
    return make_client(transport=transport, clock=clock, page_size=10, slots=budget), transport


def test_every_request_retries_included_takes_a_slot_of_the_budget() -> None:
    clock = FakeClock()
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=300))  # 30 pages
    simulator.inject(JOB, Fault("status", frozenset({2, 3}), status=503, endpoint="any"))
    store = MemoryRateBudgetStore()
    budget = FleetBudget(store, "company#default", 300, clock, executor=InlineExecutor())
    client, transport = budgeted_client(simulator, clock, budget)
    client.get_job(JobRef(JOB), Budget.unbounded(clock))
    _, pages = walk_scope_bytes(client, JOB, Budget.unbounded(clock))

    assert pages == 30
    assert len(transport.starts) == 1 + 2 + 30  # the check, two 503s, the pages
    assert budget.stats.slots_taken == len(transport.starts)
    assert most_in_any_window(transport.starts, 10.0) <= 300 / 6 + 1
    assert store.calls / len(transport.starts) <= 0.2


def test_a_budget_exhausted_beyond_the_time_left_defers_before_any_request() -> None:
    clock = FakeClock()
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=30))
    store = MemoryRateBudgetStore()
    # Other processes hold the company's budget for the next 90 s.
    store.timelines["company#default"] = round(clock.now().timestamp() * 1e6) + 90_000_000
    budget = FleetBudget(store, "company#default", 60, clock, executor=InlineExecutor())
    client, transport = budgeted_client(simulator, clock, budget)
    with pytest.raises(RetryDeferred) as deferred:
        client.get_job(JobRef(JOB), Budget.from_remaining(clock, 60.0))
    assert deferred.value.wait_seconds == pytest.approx(90.0)
    assert transport.starts == []
    assert clock.sleeps == []


def test_the_client_reports_its_best_pace_its_page_size_at_its_rate_limit() -> None:
    paced = make_client(page_size=50, max_requests_per_minute=300)
    assert paced.pace(JobRef(JOB)) == PagePace(page_size=50, seconds_per_request=0.2)
    assert paced.pace(JobRef(JOB)).least_seconds(20_000) == (400, 80.0)
    unpaced = make_client(page_size=50)
    assert unpaced.pace(JobRef(JOB)).least_seconds(101) == (3, 0.0)
