"""The rate-budget timeline in DynamoDB (moto's server, the table from template.yaml):
conditional moves only, one call per block, and processes racing for one budget each get
spans of their own."""

from __future__ import annotations

import itertools
import threading
import uuid

from pleo_scope.aws.rate_budget import DynamoRateBudgetStore
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.rate_budget import BlockPolicy, FleetBudget, FleetRateLimiter
from tests.support import make_client, walk_scope_bytes
from tooling.testkit.budget_mix import run_mix
from tooling.testkit.harness import Stack

T0 = 1_800_000_000_000_000  # epoch microseconds


def store_of(stack: Stack) -> DynamoRateBudgetStore:
    return DynamoRateBudgetStore(stack.app.app.dynamodb, stack.aws.physical["RateBudgetTable"])


def test_an_idle_timeline_starts_now_and_a_busy_one_where_it_ends(stack: Stack) -> None:
    store, key = store_of(stack), f"company#{uuid.uuid4()}"
    assert store.reserve(key, 1_000, T0, idle_likely=True) == T0  # no record yet
    assert store.calls.calls == 1
    assert store.reserve(key, 500, T0 + 10, idle_likely=False) == T0 + 1_000
    assert store.calls.calls == 2
    # A wrong guess costs one more call, never a wrong span.
    assert store.reserve(key, 500, T0 + 20, idle_likely=True) == T0 + 1_500
    assert store.calls.calls == 4
    # Long after: the timeline is in the past, the span starts now.
    assert store.reserve(key, 500, T0 + 60_000_000, idle_likely=False) == T0 + 60_000_000


def test_give_back_only_when_nobody_reserved_after(stack: Stack) -> None:
    store, key = store_of(stack), f"company#{uuid.uuid4()}"
    store.reserve(key, 1_000, T0, idle_likely=True)
    assert store.give_back(key, T0 + 1_000, T0 + 400)
    assert store.reserve(key, 1_000, T0 + 1, idle_likely=False) == T0 + 400
    assert not store.give_back(key, T0 + 1_000, T0)  # the timeline ends at T0 + 1400 now
    assert store.reserve(key, 100, T0 + 2, idle_likely=False) == T0 + 1_400


def test_racing_processes_get_disjoint_spans(stack: Stack) -> None:
    key = f"company#{uuid.uuid4()}"
    spans: list[tuple[int, int]] = []
    lock = threading.Lock()

    def process() -> None:
        store = store_of(stack)
        for _ in range(10):
            start = store.reserve(key, 1_000, T0, idle_likely=True)
            with lock:
                spans.append((start, start + 1_000))

    threads = [threading.Thread(target=process) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort()
    assert len(spans) == 60
    assert spans[0][0] == T0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # no overlap, no gap


def test_two_processes_on_one_budget_cost_a_call_per_block(stack: Stack) -> None:
    """Two processes' views of one budget at 6,000 a minute, each sending 150 requests: one
    store call per block (plus the blocks reserved ahead), not per request."""
    key = f"company#{uuid.uuid4()}"
    clock = SystemClock()
    stores = [store_of(stack), store_of(stack)]
    budgets = [FleetBudget(store, key, 6_000, clock) for store in stores]

    def process(budget: FleetBudget) -> None:
        for _ in range(150):
            budget.take(Budget.unbounded(clock), 0.0)

    threads = [threading.Thread(target=process, args=(b,)) for b in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(b.stats.slots_taken for b in budgets) == 300
    calls = sum(store.calls.calls for store in stores)
    assert calls / 300 <= 0.2


def test_a_small_walk_costs_one_call_and_its_leftover_serves_the_next_invocation(
    stack: Stack,
) -> None:
    """A container's budgets on the template's table and a 3-page walk at the simulator, at
    300 a minute: the walk fits the first block, the invocation's end keeps the leftover (not
    worth a call), and the container's next invocation for the company starts on it."""
    clock = SystemClock()
    store = store_of(stack)
    limiter = FleetRateLimiter(store, clock, "company", 300.0)
    company = str(uuid.uuid4())
    budget = limiter.budget(company, 300)
    base_url = stack.aws.function_env["PLEO_API_BASE_URL"]
    client = make_client(base_url=base_url, clock=clock, page_size=10, slots=budget)
    job = stack.new_job(items=25)
    assert walk_scope_bytes(client, job.id, Budget.unbounded(clock))[1] == 3
    limiter.release()  # what the wiring does at the end of every step
    assert (store.calls.calls, budget.stats.give_backs) == (1, 0)
    client.get_job(JobRef(job.id), Budget.unbounded(clock))  # the next invocation's check
    assert store.calls.calls == 1
    assert budget.stats.slots_taken == 4


def test_the_storm_mix_on_dynamodb_costs_under_a_tenth_of_a_call_per_request(
    stack: Stack,
) -> None:
    store = store_of(stack)
    result = run_mix(store, lambda: store.calls.calls, BlockPolicy(), prefix=f"{uuid.uuid4()}-")
    assert result.requests >= 29 * 5 + 10 * 202 + 3 * 52
    assert result.store_calls / result.requests <= 0.1
    assert result.max_rate_ratio <= 1.05
