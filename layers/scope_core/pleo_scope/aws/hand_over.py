"""Start the job's Step Functions walk, under a name derived from the job and its run, so a
retried hand-over finds the running execution instead of starting a second walk."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def execution_name(job_id: str, run_id: int, generation: int = 0) -> str:
    return f"scope-{job_id}-r{run_id}-g{generation}"  # at most 80 characters


def loop_input(job_id: str, run_id: int, wait_seconds: int = 0) -> dict[str, Any]:
    """The state machine's input: also what an operator starts to resume a stopped walk
    (the walk itself resumes from the DynamoDB checkpoint)."""
    return {
        "jobId": job_id,
        "continuation": {"runId": run_id},
        "waitSeconds": wait_seconds,
        "loop": {"iteration": 0, "generation": 0},
    }


class StepFunctionsHandOver:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._client = client
        self._state_machine_arn = state_machine_arn

    def start(self, job_id: str, run_id: int, loop_state: dict[str, Any]) -> str:
        name = execution_name(job_id, run_id)
        execution_input = loop_input(job_id, run_id, loop_state.get("waitSeconds", 0))
        try:
            return self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=name,
                input=json.dumps(execution_input, sort_keys=True),
            )["executionArn"]
        except self._client.exceptions.ExecutionAlreadyExists:
            return self._execution_arn(name)

    def _execution_arn(self, name: str) -> str:
        # arn:aws:states:region:account:stateMachine:NAME -> ...:execution:NAME:execution
        prefix, _, machine = self._state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"
