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

from pleo_scope.events import DETAIL_TYPE

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient


class TriggerFailed(Exception):
    """The trigger was not accepted, or (synchronously) the function raised."""


def claimed_event(job_id: str, source: str, region: str, account: str) -> dict[str, Any]:
    """What the EventBridge rule delivers to the function (events/ holds a sample)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {"jobId": job_id},
    }


def invoke(client: LambdaClient, function: str, event: dict[str, Any], wait: bool) -> Any:
    """Asynchronous (the rule's way: Lambda's retries and on-failure queue apply) unless
    `wait`; then the function's result, or TriggerFailed with its error."""
    reply = client.invoke(
        FunctionName=function,
        InvocationType="RequestResponse" if wait else "Event",
        Payload=json.dumps(event).encode(),
    )
    if not wait:
        if reply["StatusCode"] != 202:
            raise TriggerFailed(f"Lambda answered {reply['StatusCode']}, not 202 (accepted)")
        return None
    payload = json.loads(reply["Payload"].read() or b"null")
    if reply.get("FunctionError"):
        error = payload if isinstance(payload, dict) else {}
        raise TriggerFailed(
            f"{error.get('errorType', 'error')}: {error.get('errorMessage', payload)}"
        )
    return payload


def put_on_bus(client: EventBridgeClient, bus: str, event: dict[str, Any]) -> str:
    """Put the event on the bus; returns its id. The rule matches source and detail-type."""
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
    (entry,) = reply["Entries"]
    if reply.get("FailedEntryCount") or "EventId" not in entry:
        raise TriggerFailed(
            f"EventBridge refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
        )
    return entry["EventId"]
