"""The three invocation shapes, validated field by field, reduced to one `ScopeRequest`.

- EventBridge: `detail-type: "Export Job Claimed"`, `detail: {"jobId", "companyId"?}`,
  inside EventBridge's envelope (version, id, source, account, time, region, resources)
- Step Functions loop state: the handler's own `done: false` result, which carries
  `continuation` (read by `contract.Continuation.read`, the loop state's one reader)
- direct (`sam local invoke`, a manual run): `{"jobId", "companyId"?}` and nothing else

`companyId` absent (or null) is the deployment's default tenant (DESIGN.md, "Tenants").

Plain code rather than a validation library: three small shapes do not justify pydantic's
import time and size in the layer. Errors name field paths and reasons, never the rejected
values. Job ids are accepted in any letter case and carried in lower case, so one job is one
job everywhere (URLs, S3 keys, DynamoDB keys, messages, results).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pleo_scope.checks import FieldChecker
from pleo_scope.contract import Continuation, JobRef, LoopTicket
from pleo_scope.errors import InvalidEvent

DETAIL_TYPE = "Export Job Claimed"
_ENVELOPE_TEXT = ("version", "id", "source", "account", "region")
_NAMED_EXTRA = 5  # unexpected field names quoted in an error, at most
_NAME_CHARS = 40  # of each name, at most


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    job: JobRef
    ticket: LoopTicket | None = None
    """Set for a Step Functions loop invocation: the run and hand-over it works for."""

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def from_step_functions(self) -> bool:
        return self.ticket is not None


def parse_event(event: Any) -> ScopeRequest:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, not {type(event).__name__}")
    if "detail-type" in event or "detail" in event:
        return _job_claimed(event)
    if "continuation" in event:
        continuation = Continuation.read(event)
        return ScopeRequest(continuation.job, continuation.ticket)
    return _direct(event)


def _job_claimed(event: Mapping[str, Any]) -> ScopeRequest:
    check = FieldChecker("JobClaimedEvent")
    for name in _ENVELOPE_TEXT:
        check.text(event, name)
    check.timestamp(event, "time")
    check.text_list(event, "resources")
    if check.present(event, "detail-type") and event["detail-type"] != DETAIL_TYPE:
        check.problem("detail-type", f"Input should be '{DETAIL_TYPE}'")
    job = None
    if check.present(event, "detail"):
        detail = event["detail"]
        if isinstance(detail, dict):
            job = JobRef.read(check, detail, "detail.")
        else:
            check.problem("detail", "Input should be an object")
    return _request(check, job)


def _direct(event: Mapping[str, Any]) -> ScopeRequest:
    check = FieldChecker("DirectRequest")
    job = JobRef.read(check, event)
    extra = [str(name)[:_NAME_CHARS] for name in event if name not in ("jobId", "companyId")]
    if extra:
        named = ", ".join(extra[:_NAMED_EXTRA]) + (", ..." if len(extra) > _NAMED_EXTRA else "")
        check.problem(
            named, "Extra inputs are not permitted (a direct invocation is {jobId, companyId?})"
        )
    return _request(check, job)


def _request(check: FieldChecker, job: JobRef | None) -> ScopeRequest:
    check.finish()
    assert job is not None  # a missing or invalid id is a problem found
    return ScopeRequest(job)
