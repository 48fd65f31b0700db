"""The three invocation shapes, validated field by field, reduced to one `ScopeRequest`.

- EventBridge: `detail-type: "Export Job Claimed"`, `detail: {"jobId": ...}`, inside
  EventBridge's envelope (version, id, source, account, time, region, resources)
- Step Functions loop state: the handler's own `done: false` result, which carries
  `continuation`
- direct (`sam local invoke`, a manual run): `{"jobId": ...}` and nothing else

Plain code rather than a validation library: three small shapes do not justify pydantic's
import time and size in the layer. Errors name field paths and reasons, never the rejected
values. Job ids are accepted in any letter case and carried in lower case, so one job is one
job everywhere (URLs, S3 keys, DynamoDB keys, messages, results).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pleo_scope.errors import InvalidEvent
from pleo_scope.ports import LoopTicket

DETAIL_TYPE = "Export Job Claimed"
# Job ids go into URLs and S3 keys: accept only the UUID form Pleo uses.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ENVELOPE_TEXT = ("version", "id", "source", "account", "region")
_NAMED_EXTRA = 5  # unexpected field names quoted in an error, at most
_NAME_CHARS = 40  # of each name, at most


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    job_id: str
    ticket: LoopTicket | None = None
    """Set for a Step Functions loop invocation: the run and hand-over it works for."""

    @property
    def from_step_functions(self) -> bool:
        return self.ticket is not None


def parse_event(event: Any) -> ScopeRequest:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, not {type(event).__name__}")
    if "detail-type" in event or "detail" in event:
        return _job_claimed(event)
    if "continuation" in event:
        return _loop_state(event)
    return _direct(event)


def _job_claimed(event: Mapping[str, Any]) -> ScopeRequest:
    check = _Checker("JobClaimedEvent")
    for name in _ENVELOPE_TEXT:
        check.text(event, name)
    check.timestamp(event, "time")
    check.text_list(event, "resources")
    if check.present(event, "detail-type") and event["detail-type"] != DETAIL_TYPE:
        check.problem("detail-type", f"Input should be '{DETAIL_TYPE}'")
    job_id = None
    if check.present(event, "detail"):
        detail = event["detail"]
        if isinstance(detail, dict):
            job_id = check.job_id(detail, "jobId", "detail.")
        else:
            check.problem("detail", "Input should be an object")
    return check.request(job_id)


def _loop_state(event: Mapping[str, Any]) -> ScopeRequest:
    check = _Checker("LoopState")
    job_id = check.job_id(event, "jobId")
    run_id = hand_over = None
    continuation = event["continuation"]
    if isinstance(continuation, dict):
        run_id = check.positive_integer(continuation, "runId", "continuation.")
        hand_over = check.positive_integer(continuation, "handOver", "continuation.")
    else:
        check.problem("continuation", "Input should be an object")
    # The execution that invoked (`$$.Execution.Id`): it becomes the walk's owner of record.
    execution = event.get("execution")
    if execution is not None and not isinstance(execution, str):
        check.problem("execution", "Input should be a string")
        execution = None
    ticket = None
    if run_id is not None and hand_over is not None:
        ticket = LoopTicket(run_id, hand_over, execution)
    return check.request(job_id, ticket)


def _direct(event: Mapping[str, Any]) -> ScopeRequest:
    check = _Checker("DirectRequest")
    job_id = check.job_id(event, "jobId")
    extra = [str(name)[:_NAME_CHARS] for name in event if name != "jobId"]
    if extra:
        named = ", ".join(extra[:_NAMED_EXTRA]) + (", ..." if len(extra) > _NAMED_EXTRA else "")
        check.problem(named, "Extra inputs are not permitted (a direct invocation is {jobId})")
    return check.request(job_id)


class _Checker:
    """Collects every problem of one shape, so that one error names them all."""

    def __init__(self, shape: str) -> None:
        self._shape = shape
        self._problems: list[str] = []

    def problem(self, path: str, reason: str) -> None:
        self._problems.append(f"{path}: {reason}")

    def present(self, document: Mapping[str, Any], name: str, prefix: str = "") -> bool:
        if name in document:
            return True
        self.problem(prefix + name, "Field required")
        return False

    def text(self, document: Mapping[str, Any], name: str) -> None:
        if self.present(document, name) and not isinstance(document[name], str):
            self.problem(name, "Input should be a string")

    def text_list(self, document: Mapping[str, Any], name: str) -> None:
        if not self.present(document, name):
            return
        value = document[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, "Input should be a list of strings")

    def timestamp(self, document: Mapping[str, Any], name: str) -> None:
        if not self.present(document, name):
            return
        value = document[name]
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.problem(name, "Input should be an ISO 8601 date and time")

    def positive_integer(
        self, document: Mapping[str, Any], name: str, prefix: str = ""
    ) -> int | None:
        if not self.present(document, name, prefix):
            return None
        value = document[name]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.problem(prefix + name, "Input should be an integer of at least 1")
        return None

    def job_id(self, document: Mapping[str, Any], name: str, prefix: str = "") -> str | None:
        if not self.present(document, name, prefix):
            return None
        value = document[name]
        if isinstance(value, str) and _UUID.fullmatch(value):
            return value.lower()
        self.problem(prefix + name, "Input should be a UUID (8-4-4-4-12 hexadecimal digits)")
        return None

    def request(self, job_id: str | None, ticket: LoopTicket | None = None) -> ScopeRequest:
        if self._problems or job_id is None:
            raise InvalidEvent(f"invalid {self._shape} event: " + "; ".join(self._problems))
        return ScopeRequest(job_id, ticket)
