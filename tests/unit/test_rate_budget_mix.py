"""The storm's mix on an in-memory timeline (tooling.testkit.budget_mix): small jobs in one
invocation each, long walks over a slice and the loop, one company with three jobs at once,
the containers' budgets kept across their invocations. Counts, not times."""

from __future__ import annotations

import pytest

from pleo_scope.rate_budget import BlockPolicy
from tests.fakes import MemoryRateBudgetStore
from tooling.testkit.budget_mix import BEFORE_POLICY, Mix, MixResult, run_mix


def mix_on_memory(policy: BlockPolicy, mix: Mix) -> MixResult:
    store = MemoryRateBudgetStore()
    return run_mix(store, lambda: store.calls, policy, mix)


@pytest.mark.parametrize("latency", [0.1, 0.6])
def test_the_storm_mix_costs_a_fraction_of_a_store_call_per_request(latency: float) -> None:
    """0.6 s per request: walks slower than their slots (a starved process), whose unused
    slots lapse."""
    mix = Mix(latency=latency)
    now = mix_on_memory(BlockPolicy(), mix)
    before = mix_on_memory(BEFORE_POLICY, mix)
    assert now.requests == before.requests >= 29 * 5 + 10 * 202 + 3 * 52
    assert now.calls_per_request <= {0.1: 0.1, 0.6: 0.2}[latency]
    assert now.store_calls < 0.6 * before.store_calls
    assert now.store_calls >= now.floor_calls
    # Only an invocation's first block is waited for; the rest are reserved ahead.
    assert now.budgets.blocks_waited <= now.invocations
    # Never more than a sixth of the limit in any 10 s (and the one slot of a boundary).
    assert now.max_rate_ratio <= 1 + 6 / mix.per_minute


def test_small_jobs_alone_cost_one_call_each() -> None:
    mix = Mix(large_jobs=0, multi_jobs=0)
    result = mix_on_memory(BlockPolicy(), mix)
    assert result.invocations == result.store_calls == 29
    assert result.budgets.give_backs == 0
