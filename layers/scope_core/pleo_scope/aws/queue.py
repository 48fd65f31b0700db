"""SQS FIFO, contract v2: one message per work unit, group = job (its units in order),
deterministic deduplication id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pleo_scope.ports import OutgoingMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsScopeQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        by_id = {str(m.unit): m for m in messages}
        reply = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {
                    "Id": entry_id,
                    "MessageBody": m.body,
                    "MessageGroupId": m.group_id,
                    "MessageDeduplicationId": m.deduplication_id,
                }
                for entry_id, m in by_id.items()
            ],
        )
        return [by_id[failure["Id"]] for failure in reply.get("Failed", [])]
