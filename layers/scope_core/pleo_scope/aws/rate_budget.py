"""The fleet's rate-budget timelines in DynamoDB: one record per budget key in the rate-budget
table (its only writer is this adapter), moved by conditional updates only.

- busy timeline (it ends after now): one `SET next = next + span IF next > now`, atomic, no
  read first; the span starts where the timeline ended before the update
- idle timeline (it ends in the past, or no record yet): `SET next = now + span IF next <= now
  OR attribute_not_exists(next)`: the span starts now

Each is one call; the caller's guess (`idle_likely`) picks which to try first, and a failed
condition tries the other (another process moved the timeline in between). Records expire a
day after their last use (TTL): an idle budget costs nothing, and a fresh record is an idle
timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pleo_scope.rate_budget import MICROS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_ATTRIBUTE = "budgetKey"
NEXT_SLOT = "nextSlotUs"
EXPIRES_AT = "expiresAt"
IDLE_RECORD_SECONDS = 24 * 3600
MAX_ATTEMPTS = 8
"""Busy and idle tried in turn; each failure means another process just moved the timeline."""


class RateBudgetContention(Exception):
    """The timeline moved under every attempt (a transient condition: try again later)."""


@dataclass
class StoreCalls:
    calls: int = 0
    conflicts: int = 0


class DynamoRateBudgetStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self.calls = StoreCalls()

    def reserve(self, key: str, span_us: int, now_us: int, *, idle_likely: bool) -> int:
        idle = idle_likely
        for _ in range(MAX_ATTEMPTS):
            attempt = self._from_now if idle else self._after
            start = attempt(key, span_us, now_us)
            if start is not None:
                return start
            idle = not idle
        raise RateBudgetContention(f"rate budget {key}: the timeline kept moving")

    def give_back(self, key: str, reserved_end_us: int, back_to_us: int) -> bool:
        try:
            self._update(
                key,
                f"SET {NEXT_SLOT} = :back, {EXPIRES_AT} = :expires",
                f"{NEXT_SLOT} = :end",
                {":back": _number(back_to_us), ":end": _number(reserved_end_us)},
                back_to_us,
            )
        except _ConditionFailed:
            return False
        return True

    def _after(self, key: str, span_us: int, now_us: int) -> int | None:
        try:
            reply = self._update(
                key,
                f"SET {NEXT_SLOT} = {NEXT_SLOT} + :span, {EXPIRES_AT} = :expires",
                f"{NEXT_SLOT} > :now",
                {":span": _number(span_us), ":now": _number(now_us)},
                now_us,
                returned=True,
            )
        except _ConditionFailed:
            return None
        return int(reply) - span_us

    def _from_now(self, key: str, span_us: int, now_us: int) -> int | None:
        try:
            self._update(
                key,
                f"SET {NEXT_SLOT} = :end, {EXPIRES_AT} = :expires",
                f"attribute_not_exists({NEXT_SLOT}) OR {NEXT_SLOT} <= :now",
                {":end": _number(now_us + span_us), ":now": _number(now_us)},
                now_us,
            )
        except _ConditionFailed:
            return None
        return now_us

    def _update(
        self,
        key: str,
        expression: str,
        condition: str,
        values: dict[str, dict[str, str]],
        now_us: int,
        *,
        returned: bool = False,
    ) -> str:
        expires = now_us // MICROS + IDLE_RECORD_SECONDS
        self.calls.calls += 1
        try:
            reply = self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues={**values, ":expires": _number(expires)},
                ReturnValues="UPDATED_NEW" if returned else "NONE",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                self.calls.conflicts += 1
                raise _ConditionFailed from None
            raise
        if not returned:
            return ""
        return reply["Attributes"][NEXT_SLOT]["N"]


class _ConditionFailed(Exception):
    pass


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}
