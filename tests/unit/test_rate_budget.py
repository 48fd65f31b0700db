"""The fleet-wide rate budget on an in-memory timeline and a simulated fleet: several
processes (each with its own view of the budget) share one key, and every request start is
checked against the limit in sliding windows."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from pleo_scope.clock import Budget
from pleo_scope.rate_budget import (
    BlockPolicy,
    FleetBudget,
    FleetRateLimiter,
    SlotUnavailable,
    budget_key,
)
from tests.fakes import InlineExecutor, MemoryRateBudgetStore
from tests.support import START, FakeClock, most_in_any_window

TIMELINE_UNIT = 1e-6  # the timeline counts in microseconds


@dataclass
class World:
    """Shared time for a simulated fleet: processes read it; their sleeps only say when
    they would wake (the scheduler moves time)."""

    t: float = 0.0


@dataclass
class ProcessClock:
    world: World
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.world.t

    def now(self) -> datetime:
        return START + timedelta(seconds=self.world.t)

    def sleep(self, seconds: float) -> None:
        self.slept = seconds


@dataclass(order=True)
class Process:
    ready_at: float
    index: int
    budget: FleetBudget = field(compare=False)
    clock: ProcessClock = field(compare=False)
    left: int = field(compare=False, default=0)


def run_fleet(
    processes: int,
    requests_each: int,
    per_minute: float,
    *,
    latency: float = 0.1,
    policy: BlockPolicy | None = None,
) -> tuple[list[float], MemoryRateBudgetStore]:
    """Each process sends `requests_each` requests one after another (`latency` each), taking
    a slot before each; returns every request's start time and the store."""
    world, store = World(), MemoryRateBudgetStore()
    queue: list[Process] = []
    for index in range(processes):
        clock = ProcessClock(world)
        budget = FleetBudget(
            store, "company#c", per_minute, clock, policy=policy, executor=InlineExecutor()
        )
        heapq.heappush(queue, Process(index * 0.013, index, budget, clock, requests_each))
    starts: list[float] = []
    while queue:
        process = heapq.heappop(queue)
        world.t = process.ready_at
        process.clock.slept = 0.0
        waited = process.budget.take(Budget.unbounded(process.clock), 0.0)
        assert waited == pytest.approx(process.clock.slept)
        start = world.t + waited
        starts.append(start)
        process.left -= 1
        if process.left:
            process.ready_at = start + latency
            heapq.heappush(queue, process)
    return sorted(starts), store


def test_one_walk_is_paced_evenly_with_a_store_call_per_block_not_per_request() -> None:
    starts, store = run_fleet(1, 600, 300)
    assert most_in_any_window(starts, 60.0, TIMELINE_UNIT) <= 300
    assert most_in_any_window(starts, 10.0, TIMELINE_UNIT) <= 300 / 6 + 1
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.2, abs=1e-5)
    assert store.calls / len(starts) <= 0.2


@pytest.mark.parametrize(("processes", "per_minute"), [(3, 300), (8, 300), (20, 500), (5, 40)])
def test_concurrent_processes_share_one_budget_in_any_window(
    processes: int, per_minute: float
) -> None:
    starts, store = run_fleet(processes, 200, per_minute, latency=0.1)
    assert len(starts) == processes * 200
    assert most_in_any_window(starts, 60.0, TIMELINE_UNIT) <= per_minute
    assert most_in_any_window(starts, 10.0, TIMELINE_UNIT) <= per_minute / 6 + 1
    assert store.calls / len(starts) <= 0.2
    # The fleet uses the budget: the storm ends close to its floor of N per minute.
    floor = (len(starts) - 1) * 60 / per_minute
    assert starts[-1] - starts[0] <= floor * 1.1


def test_an_idle_budget_starts_now_and_a_slow_user_loses_only_late_slots() -> None:
    clock = FakeClock()
    store = MemoryRateBudgetStore()
    budget = FleetBudget(store, "client", 600, clock, executor=InlineExecutor())
    assert budget.take(Budget.unbounded(clock), 0.0) == 0.0
    clock.sleep(5.0)  # the user went quiet: its remaining slots are long past
    assert budget.take(Budget.unbounded(clock), 0.0) == 0.0
    assert budget.stats.slots_dropped >= budget.block_slots - 1


def test_a_slot_beyond_the_time_left_is_not_taken_and_goes_back_to_the_timeline() -> None:
    clock = FakeClock()
    store = MemoryRateBudgetStore()
    # Another process holds the next 100 s of the budget.
    other = FleetBudget(
        store,
        "company#c",
        60,
        clock,
        executor=InlineExecutor(),
        policy=BlockPolicy(block_seconds=100, max_slots=100),
    )
    other.take(Budget.unbounded(clock), 0.0)
    end_before = store.timelines["company#c"]
    mine = FleetBudget(store, "company#c", 60, clock, executor=InlineExecutor())
    with pytest.raises(SlotUnavailable) as deferred:
        mine.take(Budget.from_remaining(clock, 30.0), 5.0)
    assert deferred.value.wait_seconds == pytest.approx(100.0)
    assert store.timelines["company#c"] == end_before  # nothing kept from the budget
    assert mine.stats.slots_taken == 0
    assert clock.sleeps == []


def test_release_gives_the_unused_tail_back_unless_someone_reserved_after_it() -> None:
    clock = FakeClock()
    store = MemoryRateBudgetStore()
    first = FleetBudget(store, "k", 60, clock, executor=InlineExecutor())
    first.take(Budget.unbounded(clock), 0.0)
    first.release()
    assert store.timelines["k"] == round(START.timestamp() * 1e6) + 1_000_000
    first.take(Budget.unbounded(clock), 0.0)
    second = FleetBudget(store, "k", 60, clock, executor=InlineExecutor())
    second.take(Budget.unbounded(clock), 0.0)
    held = store.timelines["k"]
    first.release()  # its tail is not the timeline's end any more
    assert store.timelines["k"] == held


def test_budget_keys_follow_the_scope() -> None:
    assert budget_key("company", "AB12") == "company#ab12"
    assert budget_key("company", None) == "company#default"
    assert budget_key("client", "ab12") == budget_key("client", None) == "client"


def test_the_limiter_keeps_one_budget_per_key_at_the_tenants_rate() -> None:
    clock = FakeClock()
    limiter = FleetRateLimiter(
        MemoryRateBudgetStore(), clock, "company", 500.0, executor=InlineExecutor()
    )
    assert limiter.budget("a").requests_per_minute == 500.0
    assert limiter.budget("a", 300).requests_per_minute == 300.0
    assert limiter.budget("b", 300) is not limiter.budget("a", 300)
    shared = FleetRateLimiter(
        MemoryRateBudgetStore(), clock, "client", 500.0, executor=InlineExecutor()
    )
    assert shared.budget("a", 300) is shared.budget("b")
    assert shared.budget("a").requests_per_minute == 500.0
