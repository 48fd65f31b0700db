"""Start the job's Step Functions walk. Each hand-over gets names of its own
(`scope-{job}-r{run}-h{hand-over}-g{generation}`), so a new hand-over never collides with an
earlier one or with a continue-as-new of any of them."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

MAX_NAME = 80  # Step Functions' limit on execution names
MAX_GENERATIONS_AHEAD = 2
_GENERATION = re.compile(r"-g(\d+)$")


def execution_name(job_id: str, run_id: int, hand_over: int, generation: int = 0) -> str:
    name = f"scope-{job_id}-r{run_id}-h{hand_over}-g{generation}"
    assert len(name) <= MAX_NAME, name  # a 36-character job id leaves 38 for the numbers
    return name


def loop_input(job_id: str, run_id: int, hand_over: int, wait_seconds: int = 0) -> dict[str, Any]:
    """The state machine's input (the walk itself resumes from the DynamoDB checkpoint)."""
    return {
        "jobId": job_id,
        "continuation": {"runId": run_id, "handOver": hand_over},
        "waitSeconds": wait_seconds,
        "loop": {"iteration": 0, "generation": 0},
    }


class StepFunctionsHandOver:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._client = client
        self._state_machine_arn = state_machine_arn

    def execution_arn(self, job_id: str, run_id: int, hand_over: int) -> str:
        # arn:aws:states:region:account:stateMachine:NAME -> ...:execution:NAME:execution
        prefix, _, machine = self._state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{execution_name(job_id, run_id, hand_over)}"

    def start(self, job_id: str, run_id: int, hand_over: int, wait_seconds: int) -> bool:
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=execution_name(job_id, run_id, hand_over),
                input=json.dumps(loop_input(job_id, run_id, hand_over, wait_seconds)),
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            # Started by an earlier attempt of this very hand-over: fine while it runs.
            arn = self.execution_arn(job_id, run_id, hand_over)
            return self.running_execution(arn) is not None
        return True

    def running_execution(self, execution_arn: str) -> str | None:
        """`execution_arn`, or the continue-as-new generation that followed it, if running.
        (The walk record names the newest generation once that generation's first
        invocation ran; until then it names the one before, which has succeeded.)"""
        arn = execution_arn
        for _ in range(MAX_GENERATIONS_AHEAD + 1):
            status = self._status(arn)
            if status == "RUNNING":
                return arn
            match = _GENERATION.search(arn)
            if status != "SUCCEEDED" or match is None:
                return None
            arn = f"{arn[: match.start()]}-g{int(match.group(1)) + 1}"
        return None

    def _status(self, execution_arn: str) -> str | None:
        try:
            return self._client.describe_execution(executionArn=execution_arn)["status"]
        except self._client.exceptions.ExecutionDoesNotExist:
            return None
