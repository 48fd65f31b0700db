"""Large jobs: the real ASL (statemachine/) executed by moto, its Lambda tasks routed to the
handler in this process, each "invocation" given a few seconds only."""

from __future__ import annotations

import json

from tooling.pleo_sim import Fault, SimJob
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.executions import WalkExecutions, follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.loop import INVOCATION_SECONDS, routed, slow_job


def hand_over(stack: Stack, job: SimJob) -> WalkExecutions:
    result = stack.invoke({"jobId": job.id}, timeout_seconds=INVOCATION_SECONDS)
    assert result["done"] is False
    assert result["handedOver"]["executionArn"].endswith(f"scope-{job.id}-r1-h1-g0")
    return follow_walk(stack.aws, job.id)


def test_a_large_job_loops_continues_as_new_and_matches_one_invocation(stack: Stack) -> None:
    job = slow_job(stack, items=600)
    with routed(stack) as invocations:
        walk = hand_over(stack, job)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    output = json.loads(walk.final["output"])
    assert output["done"] is True
    assert output["pagesFetched"] == 60
    assert len(invocations) >= 3
    assert all("result" in i for i in invocations)  # no invocation failed
    assert len(walk.executions) >= 2  # continued as new at least once
    assert [e["name"] for e in walk.executions][:2] == [
        f"scope-{job.id}-r1-h1-g0",
        f"scope-{job.id}-r1-h1-g1",
    ]
    for invocation in invocations:  # loop state stays small: never items
        assert len(json.dumps(invocation["event"])) < 300
    # History: a full execution holds 2 iterations here (500 in the template). At under 20
    # events an iteration, 500 stay under 10,000 of the 25,000 allowed.
    sfn = stack.aws.client("stepfunctions")
    first = sfn.get_execution_history(executionArn=walk.executions[0]["executionArn"])
    assert len(first["events"]) < 2 * 20 + 10, len(first["events"])
    via_step_functions = stack.s3_object(output["scope"]["key"])
    assert via_step_functions == stack.expected_scope(job)
    assert_published_exactly_once(stack, job.id, via_step_functions)

    # The same job walked again in one uninterrupted invocation: the same bytes, and the
    # ledger keeps every item off the queue.
    stack.forget_idempotency()
    stack.simulator.clear_faults(job.id)
    single = stack.invoke({"jobId": job.id})
    assert single["done"] is True
    assert "handedOver" not in single
    assert stack.s3_object(single["scope"]["key"]) == via_step_functions
    assert stack.drain_queue() == []


def test_throttling_and_5xx_during_the_loop(stack: Stack) -> None:
    job = slow_job(stack)

    # From the 12th request on (inside the loop): 5 x 503 in a row, whose back-off does not
    # fit a 2.5 s invocation and becomes a continuation with waitSeconds (a Wait state); a
    # 429 asking for more than the cap; two 500s; a 429 with Retry-After: 0.
    def later(start: int) -> frozenset[int]:
        return frozenset(range(start, 200))

    stack.simulator.inject(
        job.id,
        Fault("status", later(12), status=503, times=5),
        Fault("status", later(24), status=429, retry_after="2", times=1),
        Fault("status", later(30), status=500, times=2),
        Fault("status", later(36), status=429, retry_after="0", times=1),
    )
    timeouts = stack.app.app.service.pleo.stats.timeouts
    with routed(stack) as invocations:
        walk = hand_over(stack, job)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    # A request given up on at the 1 s read time-out (a loaded machine) was answered anyway.
    timeouts = stack.app.app.service.pleo.stats.timeouts - timeouts
    answered = [r.status for r in stack.simulator.log if r.job_id == job.id]
    assert (answered.count(503), answered.count(500), answered.count(429)) == (5, 2, 2)
    waits = [i["result"].get("waitSeconds", 0) for i in invocations if "result" in i]
    assert max(waits) >= 1
    # pages + job check + faults + checks + the check before publishing (+ time-outs)
    assert len(answered) <= 30 + 1 + 9 + len(invocations) + 1 + timeouts
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))
