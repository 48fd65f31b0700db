"""The publish ledger: one DynamoDB record per enqueued unit, kept past SQS's 5-minute
deduplication window, so that a re-walk hours later enqueues no item twice.

A record holds the 16-byte hashes of its unit's accountingEntryIds (Binary), so its size
is bounded by the unit size (100 x 16 B), whatever the ids look like. Each SendMessageBatch
is recorded by one TransactWriteItems that also moves the walk record's unit progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from pleo_scope.aws.keys import WALK_SK, ledger_pk, ledger_run_prefix, ledger_sk, walk_pk
from pleo_scope.clock import Clock
from pleo_scope.errors import WalkInProgress
from pleo_scope.ports import UnitRecord, WalkState
from pleo_scope.scope import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

RETENTION_SECONDS = 90 * 24 * 3600
HASH_BYTES = 16


class DynamoPublishLedger:
    def __init__(self, client: DynamoDBClient, table: str, clock: Clock) -> None:
        self._client = client
        self._table = table
        self._clock = clock

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
        writes.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": walk_pk(state.job_id)}, "sk": {"S": WALK_SK}},
                    "UpdateExpression": "SET unitsPublished = :units, itemsPublished = :items",
                    "ConditionExpression": "leaseOwner = :owner AND runId = :run",
                    "ExpressionAttributeValues": {
                        ":units": {"N": str(units_published)},
                        ":items": {"N": str(items)},
                        ":owner": {"S": state.owner},
                        ":run": {"N": str(state.run_id)},
                    },
                }
            }
        )
        try:
            self._client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if _lease_lost(error):
                raise WalkInProgress(
                    f"export job {state.job_id}: the checkpoint moved under this invocation"
                    " (its lease expired and another invocation took over)"
                ) from None
            raise
        return state.but(units_published=units_published, items_published=items)

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


def _lease_lost(error: ClientError) -> bool:
    """A cancelled transaction whose walk-record update (the last action) failed its
    condition: another invocation holds the job now."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return bool(reasons) and reasons[-1].get("Code") == "ConditionalCheckFailed"
