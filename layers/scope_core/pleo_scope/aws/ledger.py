"""The publish ledger: one DynamoDB record per enqueued unit, kept past SQS's 5-minute
deduplication window, so that a re-walk hours later enqueues no item twice.

A record holds the 16-byte hashes of its unit's accountingEntryIds (Binary), so its size
is bounded by the unit size (100 x 16 B), whatever the ids look like. Each SendMessageBatch
is recorded by one TransactWriteItems that also moves the walk record's unit progress: the
ledger's records are this adapter's, the walk record's update the checkpoint store's
(`publish_progress`, which runs the transaction), so each record has one writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.aws.keys import ledger_pk, ledger_run_prefix, ledger_sk
from pleo_scope.clock import Clock
from pleo_scope.ports import UnitRecord, WalkState
from pleo_scope.scope import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

RETENTION_SECONDS = 90 * 24 * 3600
HASH_BYTES = 16


class DynamoPublishLedger:
    def __init__(
        self, client: DynamoDBClient, table: str, clock: Clock, walks: DynamoCheckpointStore
    ) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._walks = walks

    def enqueued_before(self, job_id: str, run_id: int) -> set[bytes]:
        hashes: set[bytes] = set()
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk < :run",
            ExpressionAttributeValues={
                ":pk": {"S": ledger_pk(job_id)},
                ":run": {"S": ledger_run_prefix(run_id)},
            },
            ProjectionExpression="ids",
        ):
            ids: bytes = item["ids"]["B"]
            hashes.update(ids[i : i + HASH_BYTES] for i in range(0, len(ids), HASH_BYTES))
        return hashes

    def recorded_hashes(self, job_id: str) -> list[bytes]:
        """Every id hash the job's units recorded, over all runs, repeats kept (for the
        operator's `verify`: each in-scope item must appear exactly once)."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": ledger_pk(job_id)}},
            ProjectionExpression="ids",
        )
        return [
            ids[i : i + HASH_BYTES]
            for ids in (item["ids"]["B"] for item in items)
            for i in range(0, len(ids), HASH_BYTES)
        ]

    def units_recorded(self, job_id: str, run_id: int, from_unit: int) -> set[int]:
        # Usually empty: the checkpoint is moved in the same write as the records, so only
        # units recorded past a gap (a unit SQS kept refusing) lie beyond it.
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": {"S": ledger_pk(job_id)},
                ":from": {"S": ledger_sk(run_id, from_unit)},
                ":to": {"S": ledger_run_prefix(run_id) + "~"},
            },
            ProjectionExpression="#unit",
            ExpressionAttributeNames={"#unit": "unit"},
        )
        return {int(item["unit"]["N"]) for item in items}

    def record(
        self, state: WalkState, units: Sequence[UnitRecord], units_published: int, items: int
    ) -> WalkState:
        now = self._clock.now()
        expires = str(int(now.timestamp()) + RETENTION_SECONDS)
        writes: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": {"S": ledger_pk(state.job_id)},
                        "sk": {"S": ledger_sk(state.run_id, unit.unit)},
                        "unit": {"N": str(unit.unit)},
                        "firstPosition": {"N": str(unit.first_position)},
                        "itemCount": {"N": str(unit.item_count)},
                        "ids": {"B": unit.id_hashes},
                        "enqueuedAt": {"S": iso_utc(now)},
                        "expiresAt": {"N": expires},
                    },
                }
            }
            for unit in units
        ]
        # One transaction with the walk record's progress, which the checkpoint store writes.
        return self._walks.publish_progress(
            state, writes, units_published=units_published, items_published=items
        )

    def _query(self, **request: Any) -> list[dict[str, Any]]:
        query = cast(
            "QueryInputTypeDef", {"TableName": self._table, "ConsistentRead": True, **request}
        )
        items: list[dict[str, Any]] = []
        while True:
            reply = self._client.query(**query)
            items += reply.get("Items", [])
            if "LastEvaluatedKey" not in reply:
                return items
            query["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
