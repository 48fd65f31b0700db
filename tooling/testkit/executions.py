"""Follow a job's Step Functions walk on the local stack, across continue-as-new."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tooling.testkit.local_stack import LocalStack


@dataclass(frozen=True)
class WalkExecutions:
    final: dict[str, Any]
    """describe_execution of the last execution of the chain."""
    executions: list[dict[str, Any]]
    """Every execution of the job's walk, oldest first."""


def wait_for(stack: LocalStack, execution_arn: str, timeout: float = 300) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still running after {timeout} s")
        time.sleep(0.1)


def follow_walk(stack: LocalStack, job_id: str, timeout: float = 300) -> WalkExecutions:
    """Wait until the job's newest execution has ended without starting another."""
    sfn = stack.client("stepfunctions")
    machine = stack.physical["ScopeJobStateMachine"]
    while True:
        mine = _executions_of(sfn, machine, job_id)
        newest = mine[-1]
        final = wait_for(stack, newest["executionArn"], timeout)
        if len(_executions_of(sfn, machine, job_id)) == len(mine):
            return WalkExecutions(final, mine)


def _executions_of(sfn: Any, machine: str, job_id: str) -> list[dict[str, Any]]:
    executions = [
        e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if job_id in e["name"]
    ]
    return sorted(executions, key=lambda e: e["startDate"])
