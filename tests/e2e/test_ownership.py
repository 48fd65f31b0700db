"""Large jobs never get stuck (issue 9): one owner per run, a loop that outlasts every fault,
and re-sending the trigger as the one recovery. The real ASL runs on moto; its Lambda tasks
call the handler in this process. Each test ends with the scope written, every in-scope
item enqueued exactly once, and no trigger result naming an execution that is not running.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from botocore.exceptions import ClientError

from tooling.pleo_sim import Fault
from tooling.reports.robustness import CrashAt, InjectedCrash, invoke_crashing
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.loop import INVOCATION_SECONDS, routed, slow_job

Handler = Callable[[dict[str, Any], Any], Any]


def trigger(stack: Stack, job_id: str) -> dict[str, Any]:
    """Re-send the trigger after the idempotency window, and check what it names is running."""
    stack.forget_idempotency()
    result = stack.invoke({"jobId": job_id}, timeout_seconds=INVOCATION_SECONDS)
    handed_over = result.get("handedOver")
    if handed_over is not None:
        sfn = stack.aws.client("stepfunctions")
        described = sfn.describe_execution(executionArn=handed_over["executionArn"])
        assert described["status"] == "RUNNING", described
    return result


def pleo_requests(stack: Stack, job_id: str) -> int:
    return sum(1 for request in stack.simulator.log if request.job_id == job_id)


def on_call(number: int, action: Callable[[], None]) -> Callable[[Handler], Handler]:
    """Wrap the routed handler: run `action` before the loop's `number`th invocation."""

    def wrap(handler: Handler) -> Handler:
        calls = {"n": 0}

        def handle(event: dict[str, Any], context: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == number:
                action()
                # Lambda's clock starts when the invocation does: the action ran before it.
                context = dataclasses.replace(context, started=time.monotonic())
            return handler(event, context)

        return handle

    return wrap


def test_a_retrigger_after_a_failed_execution_starts_a_new_one(stack: Stack) -> None:
    job = slow_job(stack, items=600)

    def revoke() -> None:  # the loop's second invocation meets a revoked key: a final error
        stack.simulator.api_keys = {}

    with routed(stack, on_call(2, revoke)):
        first = trigger(stack, job.id)
        failed = follow_walk(stack.aws, job.id)
    assert failed.final["status"] == "FAILED"
    assert failed.final.get("error") == "CredentialRejected"
    before = stack.walk_record(job.id)
    assert before is not None
    assert before["phase"] == "walking"

    stack.simulator.api_keys = {"sim-api-key": {"export-jobs:read"}}
    with routed(stack) as invocations:
        again = trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert again["done"] is False
    assert again["pagesFetched"] > int(before["pagesFetched"])  # resumed from the checkpoint
    assert again["handedOver"]["executionArn"].endswith(f"scope-{job.id}-r1-h2-g0")
    assert again["handedOver"]["executionArn"] != first["handedOver"]["executionArn"]
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert all("result" in invocation for invocation in invocations)
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


def test_a_retrigger_while_the_loop_runs_adopts_it(stack: Stack) -> None:
    job = slow_job(stack)
    adopted: list[dict[str, Any]] = []
    requests: list[int] = []

    def retrigger() -> None:  # between two loop iterations, after the idempotency window
        before = pleo_requests(stack, job.id)
        adopted.append(trigger(stack, job.id))
        requests.append(pleo_requests(stack, job.id) - before)

    with routed(stack, on_call(3, retrigger)) as invocations:
        trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert adopted[0]["done"] is False
    assert adopted[0]["handedOver"]["adopted"] is True
    assert "-r1-h1-g" in adopted[0]["handedOver"]["executionArn"]  # the loop's own walk
    assert requests == [0]  # adopting calls neither Pleo nor competes for the lease
    assert len({e["name"].split("-g")[0] for e in walk.executions}) == 1  # one hand-over
    assert all("result" in invocation for invocation in invocations)
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


def test_a_stopped_execution_is_recovered_by_the_trigger(stack: Stack) -> None:
    """The loop's invocation dies holding the lease while an operator stops the execution:
    the trigger takes the dead lease over at once, and hands over to a new execution."""
    job = slow_job(stack)
    sfn = stack.aws.client("stepfunctions")
    machine = stack.aws.physical["ScopeJobStateMachine"]

    def stop_mid_invocation(handler: Handler) -> Handler:
        calls = {"n": 0}

        def handle(event: dict[str, Any], context: Any) -> Any:
            calls["n"] += 1
            if calls["n"] != 2:
                return handler(event, context)
            for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")[
                "executions"
            ]:
                sfn.stop_execution(executionArn=execution["executionArn"], error="Stopped")
            try:
                with stack.app.app.injected(observer=CrashAt("page_written", 1)):
                    return handler(event, context)
            finally:
                stack.leave_lease_behind(job.id, hand_over=1, seconds=900)

        return handle

    with routed(stack, stop_mid_invocation):
        trigger(stack, job.id)
        stopped = follow_walk(stack.aws, job.id)
    # moto ends an execution stopped inside a task once the task returns: ABORTED or FAILED.
    assert stopped.final["status"] in ("ABORTED", "FAILED")
    record = stack.walk_record(job.id)
    assert record is not None
    assert int(record["leaseExpiresAt"]) > time.time() + 600  # held by a dead invocation

    with routed(stack) as invocations:
        again = trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert again["handedOver"]["executionArn"].endswith("-h2-g0")
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert all("result" in invocation for invocation in invocations)
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


class SandboxTimedout(Exception):
    """A Lambda time-out as Step Functions sees it."""


class FailingOnce:
    """A port whose `method` raises an AWS error the first time it is called."""

    def __init__(self, inner: Any, method: str, operation: str) -> None:
        self.inner, self.method, self.operation, self.failed = inner, method, operation, False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name != self.method or self.failed:
            return attribute

        def fail(*args: Any, **kwargs: Any) -> Any:
            self.failed = True
            error = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
            raise ClientError(error, self.operation)  # type: ignore[arg-type]

        return fail


def test_aws_errors_and_killed_invocations_inside_the_loop_are_retried(stack: Stack) -> None:
    job = slow_job(stack, items=600)
    app = stack.app.app
    faults = ExitStack()  # each fault stays injected from its call on, until the walk ends

    def s3_error() -> None:
        archive = FailingOnce(app.service.archive, "put_page", "PutObject")
        faults.enter_context(app.injected(archive=archive))

    def dynamodb_error() -> None:
        checkpoints = FailingOnce(app.service.checkpoints, "advance", "UpdateItem")
        faults.enter_context(app.injected(checkpoints=checkpoints))

    def killed(handler: Handler) -> Handler:
        calls = {"n": 0}

        def handle(event: dict[str, Any], context: Any) -> Any:
            calls["n"] += 1
            {1: s3_error, 3: dynamodb_error}.get(calls["n"], lambda: None)()
            if calls["n"] != 5:
                return handler(event, context)
            try:
                with app.injected(observer=CrashAt("page_written", 1)):
                    handler(event, context)
            except InjectedCrash:
                pass
            # A killed invocation's lease runs out at its time-out (plus the safety margin):
            # the loop's retries wait for that, never take over from their own hand-over.
            stack.leave_lease_behind(job.id, hand_over=1, seconds=INVOCATION_SECONDS)
            raise SandboxTimedout("Task timed out")

        return handle

    with faults, routed(stack, killed) as invocations:
        trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    errors = [i["error"] for i in invocations if "error" in i]
    assert errors[:3] == ["ClientError", "ClientError", "SandboxTimedout"]
    # Then the retries meet the killed invocation's lease until it runs out: a loop never
    # takes over from an invocation of its own hand-over, which might still run (fencing).
    assert set(errors[3:]) <= {"WalkInProgress"}
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


def test_throttling_on_the_job_check_waits_in_step_functions(stack: Stack) -> None:
    job = slow_job(stack)

    def throttle_job_check() -> None:  # above the 1 s cap of the local settings
        stack.simulator.inject(
            job.id, Fault("status", endpoint="job", status=429, retry_after="3", times=1)
        )

    with routed(stack, on_call(2, throttle_job_check)) as invocations:
        trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert all("result" in invocation for invocation in invocations)
    assert invocations[1]["result"]["waitSeconds"] == 3
    assert invocations[1]["result"]["pagesFetched"] == invocations[0]["result"]["pagesFetched"]
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


def test_a_crash_after_the_last_checkpoint_does_not_walk_again(stack: Stack) -> None:
    """The last page's endCursor is null, and cursors repeat if the walk started over."""
    job = stack.new_job(items=45)
    job.stable_cursors, job.last_end_cursor = True, False
    invoke_crashing(stack, {"jobId": job.id}, "checkpoint_written", 5)
    record = stack.walk_record(job.id)
    assert record is not None
    assert (record["phase"], record["pagesFetched"]) == ("walked", "5")
    items_requests = sum(1 for r in stack.simulator.log if r.job_id == job.id)

    result = stack.invoke({"jobId": job.id})
    assert result["done"] is True
    assert result["pagesFetched"] == 5
    answered = [r.endpoint for r in stack.simulator.log if r.job_id == job.id][items_requests:]
    assert answered == ["job"]  # the rerun checked the job and fetched no page again
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


def test_a_missing_archived_page_walks_the_job_again(stack: Stack) -> None:
    job = slow_job(stack)
    s3 = stack.aws.client("s3")

    def lose_page_one() -> None:
        s3.delete_object(
            Bucket=stack.aws.physical["ScopeBucket"],
            Key=f"export-jobs/{job.id}/pages/run-000001/page-0000001.json",
        )

    with routed(stack, on_call(1, lose_page_one)) as invocations:
        trigger(stack, job.id)
        walk = follow_walk(stack.aws, job.id)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert all("result" in invocation for invocation in invocations)
    runs = [i["result"]["continuation"]["runId"] for i in invocations if not i["result"]["done"]]
    assert runs[0] == 1
    assert runs[-1] == 2  # the walk started again as run 2
    record = stack.walk_record(job.id)
    assert record is not None
    assert record["runId"] == "2"
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))
