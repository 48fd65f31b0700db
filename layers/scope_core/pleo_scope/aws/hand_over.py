"""Start the job's Step Functions walk, under the names `contract.ExecutionName` gives each
hand-over and generation, with the input `contract.LoopInput` writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pleo_scope.contract import ExecutionName, LoopInput

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

MAX_GENERATIONS_AHEAD = 2


class StepFunctionsHandOver:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._client = client
        self._state_machine_arn = state_machine_arn

    def execution_arn(self, name: ExecutionName) -> str:
        # arn:aws:states:region:account:stateMachine:NAME -> ...:execution:NAME:execution
        prefix, _, machine = self._state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"

    def start(self, loop: LoopInput) -> bool:
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=str(loop.execution_name),
                input=json.dumps(loop.payload()),
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            # Started by an earlier attempt of this very hand-over: fine while it runs.
            return self.running_execution(self.execution_arn(loop.execution_name)) is not None
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
            following = ExecutionName.following(arn)
            if status != "SUCCEEDED" or following is None:
                return None
            arn = following
        return None

    def _status(self, execution_arn: str) -> str | None:
        try:
            return self._client.describe_execution(executionArn=execution_arn)["status"]
        except self._client.exceptions.ExecutionDoesNotExist:
            return None
