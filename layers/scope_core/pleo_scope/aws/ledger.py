"""The publish ledger: one DynamoDB record per (jobId, accountingEntryId) enqueued, kept past
SQS's 5-minute deduplication window, so a re-walk hours later enqueues nothing twice."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import batched
from typing import TYPE_CHECKING, cast

from pleo_scope.aws.keys import LEDGER_SK, ledger_pk
from pleo_scope.clock import Clock
from pleo_scope.errors import PublishFailed
from pleo_scope.ports import OutgoingMessage
from pleo_scope.scope import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        KeysAndAttributesTypeDef,
        WriteRequestTypeDef,
    )

RETENTION_SECONDS = 90 * 24 * 3600
UNPROCESSED_ATTEMPTS = 6


class DynamoPublishLedger:
    def __init__(self, client: DynamoDBClient, table: str, clock: Clock) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def already_enqueued(self, job_id: str, entry_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        prefix = len(ledger_pk(job_id, ""))
        for chunk in batched(entry_ids, 100):  # BatchGetItem's limit
            request: dict[str, KeysAndAttributesTypeDef] = {
                self._table: {
                    "Keys": [
                        {"pk": {"S": ledger_pk(job_id, i)}, "sk": {"S": LEDGER_SK}} for i in chunk
                    ],
                    "ProjectionExpression": "pk",
                    "ConsistentRead": True,
                }
            }
            for _ in range(UNPROCESSED_ATTEMPTS):
                reply = self._client.batch_get_item(RequestItems=request)
                for item in reply.get("Responses", {}).get(self._table, []):
                    found.add(item["pk"]["S"][prefix:])
                # The unprocessed keys are the request for the next attempt.
                request = cast(
                    "dict[str, KeysAndAttributesTypeDef]", reply.get("UnprocessedKeys") or {}
                )
                if not request:
                    break
                self._back_off()
            else:
                raise PublishFailed(f"ledger of export job {job_id}: reads kept being throttled")
        return found

    def record(self, job_id: str, run_id: int, messages: Sequence[OutgoingMessage]) -> None:
        now = self._clock.now()
        expires = str(int(now.timestamp()) + RETENTION_SECONDS)
        for chunk in batched(messages, 25):  # BatchWriteItem's limit
            requests: list[WriteRequestTypeDef] = [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": ledger_pk(job_id, m.accounting_entry_id)},
                            "sk": {"S": LEDGER_SK},
                            "runId": {"N": str(run_id)},
                            "position": {"N": str(m.position)},
                            "enqueuedAt": {"S": iso_utc(now)},
                            "expiresAt": {"N": expires},
                        }
                    }
                }
                for m in chunk
            ]
            self._write_all(job_id, requests)

    def _write_all(self, job_id: str, requests: list[WriteRequestTypeDef]) -> None:
        pending = {self._table: requests}
        for _ in range(UNPROCESSED_ATTEMPTS):
            reply = self._client.batch_write_item(RequestItems=pending)
            unprocessed = reply.get("UnprocessedItems") or {}
            pending = cast("dict[str, list[WriteRequestTypeDef]]", unprocessed)
            if not pending:
                return
            self._back_off()
        raise PublishFailed(f"ledger of export job {job_id}: writes kept being throttled")

    def _back_off(self) -> None:
        self._clock.sleep(0.05)
