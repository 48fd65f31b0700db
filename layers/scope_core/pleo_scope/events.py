"""The three invocation shapes, validated with Powertools Parser, reduced to one `ScopeRequest`.

- EventBridge: `detail-type: "Export Job Claimed"`, `detail: {"jobId": ...}`
- Step Functions loop state: the handler's own `done: false` result, which carries
  `continuation`
- direct (`sam local invoke`, a manual run): `{"jobId": ...}` and nothing else
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import BaseModel, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ConfigDict, Field, StringConstraints, ValidationError

from pleo_scope.errors import InvalidEvent

DETAIL_TYPE = "Export Job Claimed"
# Job ids go into URLs and S3 keys: accept only the UUID form Pleo uses, in any letter case;
# the request carries it in lower case, so one job is one job everywhere.
JobId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]


class JobClaimedDetail(BaseModel):
    jobId: JobId


class JobClaimedEvent(EventBridgeModel):
    detail_type: Literal["Export Job Claimed"] = Field(alias="detail-type")
    detail: JobClaimedDetail


class Continuation(BaseModel):
    runId: int = Field(ge=1)


class LoopState(BaseModel):
    jobId: JobId
    continuation: Continuation


class DirectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobId: JobId


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    job_id: str
    run_id: int | None = None
    """Set for a Step Functions loop invocation: the walk run it continues."""

    @property
    def from_step_functions(self) -> bool:
        return self.run_id is not None


def parse_event(event: Any) -> ScopeRequest:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, not {type(event).__name__}")
    try:
        if "detail-type" in event or "detail" in event:
            claimed = parse(event=event, model=JobClaimedEvent)
            return ScopeRequest(claimed.detail.jobId.lower())
        if "continuation" in event:
            state = parse(event=event, model=LoopState)
            return ScopeRequest(state.jobId.lower(), state.continuation.runId)
        direct = parse(event=event, model=DirectRequest)
        return ScopeRequest(direct.jobId.lower())
    except ValidationError as error:
        raise InvalidEvent(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """Field paths and reasons only: the rejected values stay out of logs and errors."""
    problems = [
        f"{'.'.join(str(part) for part in issue['loc']) or '(event)'}: {issue['msg']}"
        for issue in error.errors()
    ]
    return f"invalid {error.title} event: " + "; ".join(problems)
