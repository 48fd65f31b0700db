"""The fleet-wide rate budget on an in-memory timeline and a simulated fleet: several
processes (each with its own view of the budget) share one key, and every request start is
checked against the limit in sliding windows."""

from __future__ import annotations

import heapq
import itertools
import math
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
    offsets = [index * 0.013 for index in range(processes)]
    starts, store, _ = fleet(offsets, [requests_each] * processes, per_minute, latency, policy)
    return sorted(start for start, _ in starts), store


def fleet(
    offsets: list[float],
    requests: list[int],
    per_minute: float,
    latency: float,
    policy: BlockPolicy | None = None,
) -> tuple[list[tuple[float, int]], MemoryRateBudgetStore, list[FleetBudget]]:
    """Process i starts at `offsets[i]` and sends `requests[i]` requests; returns each
    request's (start, process), the store and the processes' budgets."""
    world, store = World(), MemoryRateBudgetStore()
    queue: list[Process] = []
    budgets = []
    for index, (offset, count) in enumerate(zip(offsets, requests, strict=True)):
        clock = ProcessClock(world)
        budget = FleetBudget(
            store, "company#c", per_minute, clock, policy=policy, executor=InlineExecutor()
        )
        budgets.append(budget)
        heapq.heappush(queue, Process(offset, index, budget, clock, count))
    starts: list[tuple[float, int]] = []
    while queue:
        process = heapq.heappop(queue)
        world.t = process.ready_at
        process.clock.slept = 0.0
        waited = process.budget.take(Budget.unbounded(process.clock), 0.0)
        assert waited == pytest.approx(process.clock.slept)
        start = world.t + waited
        starts.append((start, process.index))
        process.left -= 1
        if process.left:
            process.ready_at = start + latency
            heapq.heappush(queue, process)
    return sorted(starts), store, budgets


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
    every_slot = BlockPolicy(give_back_seconds=0.0)
    first = FleetBudget(store, "k", 60, clock, policy=every_slot, executor=InlineExecutor())
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


def take_one(budget: FleetBudget, clock: FakeClock, latency: float = 0.1) -> None:
    budget.take(Budget.unbounded(clock), latency)
    clock.sleep(latency)


def test_a_small_job_costs_one_store_call_and_its_leftover_serves_the_next_invocation() -> None:
    clock, store = FakeClock(), MemoryRateBudgetStore()
    budget = FleetBudget(store, "company#c", 300, clock, executor=InlineExecutor())
    for _ in range(5):  # the job check, three pages, the re-check
        take_one(budget, clock)
    budget.release()
    assert store.calls == 1
    assert budget.stats.slots_given_back == 0  # half a first block: not worth a call
    take_one(budget, clock)  # the container's next invocation for the company, at once
    assert store.calls == 1
    assert budget.stats.blocks_waited == 1
    clock.sleep(10.0)  # much later: the kept slots have lapsed, a fresh first block
    take_one(budget, clock)
    assert store.calls == 2
    assert budget.stats.slots_dropped > 0


def test_a_walk_alone_doubles_its_blocks_and_waits_for_none_but_the_first() -> None:
    clock, store = FakeClock(), MemoryRateBudgetStore()
    policy = BlockPolicy()
    budget = FleetBudget(store, "company#c", 300, clock, policy=policy, executor=InlineExecutor())
    for _ in range(600):
        take_one(budget, clock)
    longest = policy.max_block(0.2)
    assert longest == 40  # 8 s at 300 a minute
    assert store.calls <= 2 + math.ceil(600 / longest)  # the 2 s and 4 s blocks first
    assert budget.stats.blocks_waited == 1


def test_a_process_joining_a_walk_s_budget_soon_shares_it_evenly() -> None:
    # A walk alone for a minute (its blocks have grown to 8 s), then another process joins.
    starts, _, _ = fleet([0.0, 60.0], [600, 100], 300, latency=0.1)
    joiner = [start for start, index in starts if index == 1]
    assert joiner[0] - 60.0 <= 8.0 + 1.0  # behind the walk's block and the one ahead of it
    both = [index for start, index in starts if joiner[0] <= start <= joiner[-1]]
    # Neither holds long blocks ahead of the other any more: turns of about 2 s each.
    assert both.count(1) / len(both) >= 0.4
    assert max(b - a for a, b in itertools.pairwise(joiner)) <= 2.0 + 0.5
    assert most_in_any_window([s for s, _ in starts], 10.0, TIMELINE_UNIT) <= 300 / 6 + 1


def test_a_shared_budget_gives_even_a_small_leftover_back() -> None:
    clock, store = FakeClock(), MemoryRateBudgetStore()
    other = FleetBudget(store, "company#c", 300, clock, executor=InlineExecutor())
    mine = FleetBudget(store, "company#c", 300, clock, executor=InlineExecutor())
    other.take(Budget.unbounded(clock), 0.0)
    mine.take(Budget.unbounded(clock), 0.0)  # behind the other's block
    ends_at = store.timelines["company#c"]
    mine.release()
    assert mine.stats.give_backs == 1
    assert store.timelines["company#c"] < ends_at
