"""Triggers that arrive through the admission queue (SQS in front of the function).

Lambda's SQS event source hands the function `{"Records": [...]}`; each record's `body` is
one trigger in a shape `events.parse_event` knows: the "Export Job Claimed" event as the
EventBridge rule puts it on the queue, or a direct `{"jobId": ...}` (an operator's send).
A Step Functions loop state never comes this way: it is rejected like any other bad body.

A record whose body is not a trigger is not an error of the whole batch: it becomes a
`QueuedTrigger` carrying its `InvalidEvent`, so that the handler sets that message aside (the
admission dead-letter queue) and goes on, instead of failing it back into a retry loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pleo_scope.errors import InvalidEvent
from pleo_scope.events import ScopeRequest, parse_event

SQS_SOURCE = "aws:sqs"


@dataclass(frozen=True, slots=True)
class QueuedTrigger:
    message_id: str
    """What a batch item failure names (`itemIdentifier`)."""
    body: str
    """Kept as received, for the dead-letter queue."""
    request: ScopeRequest | None = None
    error: InvalidEvent | None = None
    """Set, and `request` None, when the body is not a trigger."""
    receive_count: int = 1
    queued_seconds: float | None = None
    """From sending to its first receipt: how long it waited for an admission slot."""


def is_sqs_event(event: Any) -> bool:
    """The event source's shape: checked before `parse_event`, which knows no records."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        return False
    records = event["Records"]
    return bool(records) and all(
        isinstance(r, dict) and r.get("eventSource") == SQS_SOURCE for r in records
    )


def parse_sqs_event(event: Mapping[str, Any]) -> list[QueuedTrigger]:
    """One `QueuedTrigger` per record, in order. A record without a message id cannot be
    reported back to the event source at all: that is an `InvalidEvent` for the batch."""
    triggers = []
    for index, record in enumerate(event["Records"]):
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise InvalidEvent(
                f"invalid SqsEvent event: Records[{index}].messageId: Field required"
            )
        triggers.append(_trigger(message_id, record))
    return triggers


def _trigger(message_id: str, record: Mapping[str, Any]) -> QueuedTrigger:
    body = record.get("body")
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    count = _integer(attributes.get("ApproximateReceiveCount")) or 1
    sent = _integer(attributes.get("SentTimestamp"))
    first = _integer(attributes.get("ApproximateFirstReceiveTimestamp"))
    queued = (first - sent) / 1e3 if sent is not None and first is not None else None
    if not isinstance(body, str):
        error = InvalidEvent("invalid SqsRecord event: body: Input should be a string")
        return QueuedTrigger(message_id, "", error=error, receive_count=count)
    try:
        request = parse_body(body)
    except InvalidEvent as invalid:
        return QueuedTrigger(message_id, body, error=invalid, receive_count=count)
    return QueuedTrigger(message_id, body, request, receive_count=count, queued_seconds=queued)


def parse_body(body: str) -> ScopeRequest:
    try:
        trigger = json.loads(body)
    except ValueError:
        raise InvalidEvent("invalid SqsRecord event: body: Input should be JSON") from None
    if isinstance(trigger, dict) and "continuation" in trigger:
        raise InvalidEvent(
            "invalid SqsRecord event: body: a loop state comes from Step Functions, not the"
            " admission queue (a trigger is an Export Job Claimed event or {jobId})"
        )
    return parse_event(trigger)


def _integer(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
