"""A job that stops being claimed, and what operators are told (issue 19, contract v3): the
job is checked once more right before publishing; a run that ended on a final error is
`failed` (its error, cause, Pleo's job status and what fixes it), never "stuck: re-send the
trigger"; `status` never shows an earlier run's unit counters as the current run's."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_scope.contract import JobRef
from pleo_scope.errors import JobNotClaimed
from tooling.ops.cli import EXIT_FAILED, EXIT_STUCK
from tooling.pleo_sim import Fault, SimJob
from tooling.reports.robustness import invoke_crashing
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.loop import INVOCATION_SECONDS
from tooling.testkit.ops_cli import ops, ops_json
from tooling.testkit.ops_cli import table_rows as rows


def units_of(stack: Stack, job: SimJob) -> list[dict[str, Any]]:
    return [m for m in stack.drain_queue() if m["jobId"] == job.id]


def assert_failed_not_stuck(stack: Stack, job: SimJob, pleo_status: str) -> dict[str, Any]:
    status = ops(stack, "status", job.id)
    assert status.exit_code == EXIT_FAILED, status.output
    shown = rows(status.stdout)
    assert shown["state"].startswith("failed: the run ended on the final error JobNotClaimed")
    assert shown["error"] == "JobNotClaimed"
    assert f"is '{pleo_status}', not 'in_progress'" in shown["cause"]
    assert shown["pleo job status"] == pleo_status
    assert shown["next step"].startswith("nothing to re-send")
    assert "re-send the trigger:" not in status.stdout
    listed = [s for s in ops_json(stack, "list") if s["jobId"] == job.id]
    assert [(s["state"], s["failure"]["error"]) for s in listed] == [("failed", "JobNotClaimed")]
    table = ops(stack, "list")
    assert f"{job.id[:8]}: JobNotClaimed" in table.stdout
    assert "a re-send alone does not help" in table.stdout
    failed: dict[str, Any] = ops_json(stack, "status", job.id, exit_code=EXIT_FAILED)
    return failed


def test_a_job_pleo_fails_during_the_walk_gets_nothing_enqueued(stack: Stack) -> None:
    job = stack.new_job(items=45)  # 5 pages; request 1 is the job check, 2..6 the pages
    stack.simulator.inject(job.id, Fault("set_job_status", frozenset({6}), job_status="failed"))
    with pytest.raises(JobNotClaimed, match="'failed'"):
        stack.invoke({"jobId": job.id})
    assert units_of(stack, job) == []
    assert not [k for k in stack.s3_keys(job.id) if k.endswith(("scope.jsonl", "scope.json"))]
    record = stack.app.app.checkpoints.peek(JobRef(job.id))
    assert record is not None
    assert record.phase == "walked"  # every page in, nothing published
    assert record.final_error is not None
    assert (record.final_error.name, record.final_error.job_status) == ("JobNotClaimed", "failed")
    failed = assert_failed_not_stuck(stack, job, "failed")
    assert failed["failure"]["source"] == "walk record"

    # A re-send (what the v2 runbook said) cannot help: the same final error, still nothing.
    with pytest.raises(JobNotClaimed):
        stack.invoke({"jobId": job.id})
    assert units_of(stack, job) == []
    assert_failed_not_stuck(stack, job, "failed")


def test_a_trigger_s_final_error_outside_step_functions_is_kept_for_list(stack: Stack) -> None:
    """A walk left mid-way (its invocation killed) is stuck; Pleo expires the job; the
    re-sent trigger raises the final error, and from then on the job is failed, not stuck."""
    job = stack.new_job(items=45)
    invoke_crashing(stack, {"jobId": job.id}, "page_fetched", 2)
    assert ops(stack, "status", job.id).exit_code == EXIT_STUCK
    stack.simulator.job(job.id).status = "failed"  # expired: failureReasonType job_expired
    with pytest.raises(JobNotClaimed):
        stack.invoke({"jobId": job.id})
    assert_failed_not_stuck(stack, job, "failed")


def test_a_loop_that_ends_on_a_final_error_is_failed_with_the_fail_state_s_error(
    stack: Stack,
) -> None:
    job = stack.new_job(items=200)  # 20 pages of 100 ms: handed over to the state machine
    stack.simulator.inject(job.id, Fault("latency", seconds=0.1))
    with route_lambda(stack.app.lambda_handler, INVOCATION_SECONDS):
        first = stack.invoke({"jobId": job.id}, timeout_seconds=INVOCATION_SECONDS)
        assert first["done"] is False
        stack.simulator.job(job.id).status = "failed"
        walk = follow_walk(stack.aws, job.id).final
    assert walk["status"] == "FAILED"
    assert walk["error"] == "JobNotClaimed"
    assert units_of(stack, job) == []
    failed = assert_failed_not_stuck(stack, job, "failed")
    assert failed["execution"]["status"] == "FAILED"

    # Where only the Fail state tells it (a record written before v3), status reads it there.
    stack.aws.client("dynamodb").update_item(
        TableName=stack.aws.physical["ScopeTable"],
        Key={"pk": {"S": f"JOB#{job.id}"}, "sk": {"S": "WALK"}},
        UpdateExpression="REMOVE finalError",
    )
    from_execution = ops_json(stack, "status", job.id, exit_code=EXIT_FAILED)
    assert from_execution["failure"]["source"] == "execution"
    assert from_execution["failure"]["error"] == "JobNotClaimed"
    assert "not 'in_progress'" in from_execution["failure"]["cause"]


def test_status_never_shows_an_earlier_run_s_units_as_the_current_run_s(stack: Stack) -> None:
    job = stack.new_job(items=450)  # about 300 in scope: several units of 100
    assert stack.invoke({"jobId": job.id})["done"] is True
    stack.drain_queue()
    published = ops_json(stack, "status", job.id)
    assert published["unitsPublished"] == published["unitCount"] > 1

    stack.forget_idempotency()  # a re-walk, its invocation killed mid-walk
    invoke_crashing(stack, {"jobId": job.id}, "page_fetched", 3)
    rewalk = ops_json(stack, "status", job.id, exit_code=EXIT_STUCK)
    assert (rewalk["runId"], rewalk["phase"]) == (2, "walking")
    assert (rewalk["unitsPublished"], rewalk["unitCount"], rewalk["itemsPublished"]) == (
        None,
        None,
        0,
    )
    assert rewalk["itemsInScope"] is None
    assert rewalk["scope"]["publishedRun"] == 1  # consumers still read run 1
    shown = rows(ops(stack, "status", job.id).stdout)
    assert "units published" not in shown
    assert shown["items published"] == "0 of -"
    assert shown["consumers read"].startswith("run 1")
