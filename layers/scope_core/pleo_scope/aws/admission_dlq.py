"""The admission dead-letter queue: triggers set aside (not a trigger, or a final error),
each with the error's name and reason as message attributes beside the body as received."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import boto3

from pleo_scope.aws.clients import AWS_CONFIG, LazyClient
from pleo_scope.sqs_trigger import QueuedTrigger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_BODY_BYTES = 256 * 1024 - 4096  # SQS's message size, minus room for the attributes


class SqsDeadLetters:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    @classmethod
    def at(cls, queue_url: str | None) -> SqsDeadLetters | None:
        """For the handler: its client is made on the first message set aside."""
        if queue_url is None:
            return None
        client = LazyClient(lambda: boto3.session.Session().client("sqs", config=AWS_CONFIG))
        return cls(cast("SQSClient", client), queue_url)

    def keep(self, trigger: QueuedTrigger, error_name: str, reason: str) -> None:
        body = trigger.body.encode()[:MAX_BODY_BYTES].decode(errors="ignore") or "{}"
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            MessageAttributes={
                "error": {"DataType": "String", "StringValue": error_name},
                "reason": {"DataType": "String", "StringValue": reason or error_name},
                "sourceMessageId": {"DataType": "String", "StringValue": trigger.message_id},
            },
        )
