"""`retrigger JOB`: the one recovery. Sends the job the very trigger EventBridge delivers, an
"Export Job Claimed" event, either to the function (an asynchronous invocation, as the rule
makes; or a synchronous one, to see the result) or onto the event bus the rule listens to.
The function decides what to do with it (adopt a running walk, continue a stopped one, walk
a published job again): nothing the contract allows is refused here."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pleo_scope.errors import ScopeError
from pleo_scope.events import DETAIL_TYPE

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient


class TriggerFailed(Exception):
    """The trigger was not accepted, or (synchronously) no good result came back."""


class FunctionFailed(TriggerFailed):
    """The function raised one of its typed errors (its answer, and a failure)."""


class NotTheFunctionsAnswer(TriggerFailed):
    """What came back is neither a ScopeJob result nor one of its typed errors: something
    else answered (a stand-in, another function, a runtime crash)."""


def _names(error: type[BaseException]) -> set[str]:
    return {error.__name__}.union(*(_names(sub) for sub in error.__subclasses__()))


# What the function raises on purpose (DESIGN.md: failures raise typed exceptions), and
# Powertools' answer to a trigger while the same trigger's invocation still runs.
TYPED_ERRORS = frozenset(_names(ScopeError) | {"IdempotencyAlreadyInProgressError"})


def claimed_event(
    job_id: str, source: str, region: str, account: str, company_id: str | None = None
) -> dict[str, Any]:
    """What the EventBridge rule delivers to the function (events/ holds a sample); without
    `company_id`, the default tenant's."""
    detail: dict[str, str] = {"jobId": job_id}
    if company_id is not None:
        detail["companyId"] = company_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


def invoke(client: LambdaClient, function: str, event: dict[str, Any], wait: bool) -> Any:
    """Asynchronous (the rule's way: Lambda's retries and on-failure queue apply) unless
    `wait`; then the function's result, checked to be one (`answer`)."""
    reply = client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse" if wait else "Event",
        Payload=json.dumps(event).encode(),
    )
    if not wait:
        if reply["StatusCode"] != 202:
            raise TriggerFailed(
                f"function {function}: Lambda answered {reply['StatusCode']}, not 202 (accepted)"
            )
        return None
    raw = reply["Payload"].read()
    return answer(function, event["detail"]["jobId"], raw, reply.get("FunctionError"))


def answer(function: str, job_id: str, raw: bytes, function_error: str | None) -> dict[str, Any]:
    """The function's result for `job_id` (a done result or a continuation); FunctionFailed
    for one of its typed errors; NotTheFunctionsAnswer for anything else."""
    try:
        payload: Any = json.loads(raw or b"null")
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    shown = _short(payload)
    if function_error:
        error = payload if isinstance(payload, dict) else {}
        name = str(error.get("errorType", ""))
        message = f"{name}: {error.get('errorMessage', '')}"
        if name in TYPED_ERRORS:
            raise FunctionFailed(f"function {function} failed: {message}")
        raise NotTheFunctionsAnswer(
            f"function {function} answered an error that is not one of ScopeJob's typed"
            f" errors ({function_error}): {message if name else shown}"
        )
    problem = _not_a_result(payload, job_id)
    if problem:
        raise NotTheFunctionsAnswer(
            f"function {function} answered {shown}: not a ScopeJob result ({problem})"
        )
    result: dict[str, Any] = payload
    return result


def _not_a_result(payload: Any, job_id: str) -> str | None:
    """Why `payload` is not ScopeJob's result for `job_id` (DESIGN.md, "Handler result")."""
    if not isinstance(payload, dict):
        return "not a JSON object"
    if payload.get("jobId") != job_id:
        return f"jobId is {payload.get('jobId')!r}, not {job_id!r}"
    if payload.get("done") is True:
        scope = payload.get("scope")
        if not isinstance(scope, dict) or not all(
            isinstance(scope.get(k), str) for k in ("bucket", "key", "manifestKey")
        ):
            return "done, but no scope bucket, key and manifestKey"
        if not isinstance(payload.get("itemsInScope"), int):
            return "done, but no itemsInScope"
        return None
    if payload.get("done") is False:
        continuation = payload.get("continuation")
        if not isinstance(continuation, dict) or not isinstance(continuation.get("runId"), int):
            return "not done, but no continuation"
        return None
    return "no done flag"


def _short(payload: Any, limit: int = 160) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def put_on_bus(client: EventBridgeClient, bus: str, event: dict[str, Any]) -> str:
    """Put the event on the bus; returns the id the bus gave it. The rule matches source and
    detail-type; what the rule's target does with it is the target's (follow with status)."""
    reply = client.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    entries = reply.get("Entries", [])
    entry = entries[0] if entries else {}
    if reply.get("FailedEntryCount") or "EventId" not in entry:
        raise TriggerFailed(
            f"event bus {bus} refused the event ({reply.get('FailedEntryCount', '?')} failed"
            f" entry): {entry.get('ErrorCode', 'no error code')}"
            f" {entry.get('ErrorMessage', '')}".rstrip()
        )
    return entry["EventId"]
