"""The end of an invocation gives back the rate-budget slots it holds but will not use, and a
store that fails then does not fail the invocation."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pleo_scope.clock import Budget
from pleo_scope.rate_budget import BlockPolicy, FleetRateLimiter
from pleo_scope.settings import Settings
from pleo_scope.wiring import Parts, Wiring
from tests.fakes import InlineExecutor, MemoryRateBudgetStore
from tests.support import FakeClock

ENV = {
    "PLEO_API_BASE_URL": "https://pleo.invalid",
    "PLEO_API_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pleo",
    "SCOPE_TABLE_NAME": "scope",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "SCOPE_BUCKET_NAME": "bucket",
    "SCOPE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/scope.fifo",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:scope",
}


def wired(limiter: FleetRateLimiter | None) -> Wiring:
    parts = Parts(
        service=cast(Any, None),
        checkpoints=cast(Any, None),
        secrets=cast(Any, None),
        dynamodb=cast(Any, None),
        triggers=cast(Any, None),
        rate_limiter=limiter,
    )
    wiring = Wiring(Settings.from_env(ENV), lambda: parts)
    wiring.parts()
    return wiring


def test_unused_slots_go_back_to_the_timeline() -> None:
    store, clock = MemoryRateBudgetStore(), FakeClock()
    limiter = FleetRateLimiter(
        store, clock, default_requests_per_minute=600, executor=InlineExecutor()
    )
    budget = limiter.budget("company-a")
    for _ in range(budget.block_slots - 2):  # the next block is reserved ahead, then held
        budget.take(Budget.unbounded(clock), 0.1)
    (key,) = store.timelines
    held_until = store.timelines[key]
    wired(limiter).release_rate_slots()
    assert store.timelines[key] < held_until
    assert budget.stats.slots_given_back > 0


def test_a_failing_give_back_does_not_fail_the_invocation(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MemoryRateBudgetStore):
        def give_back(self, key: str, reserved_end_us: int, back_to_us: int) -> bool:
            raise ConnectionError("DynamoDB unreachable")

    clock = FakeClock()
    every_slot = BlockPolicy(give_back_seconds=0.0)
    limiter = FleetRateLimiter(Broken(), clock, policy=every_slot, executor=InlineExecutor())
    limiter.budget(None).take(Budget.unbounded(clock), 0.1)
    wired(limiter).release_rate_slots()
    assert "could not give back" in caplog.text


def test_without_a_limiter_or_before_assembly_nothing_happens() -> None:
    wired(None).release_rate_slots()
    Wiring(Settings.from_env(ENV), lambda: cast(Any, None)).release_rate_slots()
