"""Walk checkpoints and the job lease in DynamoDB, with conditional writes only: two
invocations can never both advance one job."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pleo_scope.aws.keys import CURSOR_SK, WALK_SK, cursor_pk, job_of_walk_pk, walk_pk
from pleo_scope.clock import Clock
from pleo_scope.contract import JobRef, LoopTicket
from pleo_scope.errors import RepeatedCursor, WalkInProgress
from pleo_scope.ports import FinalError, FollowedCursor, WalkPosition, WalkState
from pleo_scope.scope import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

RETENTION_SECONDS = 90 * 24 * 3600
CLOCK_SKEW_SECONDS = 1.0
"""How far another host's clock may run ahead of this one's (a lease is never assumed held
this close to its expiry)."""

# The WalkState fields `update` may change, and their attribute names.
_ATTRIBUTE_OF = {
    "phase": "phase",
    "items_published": "itemsPublished",
    "items_in_scope": "itemsInScope",
    "scope_sha256": "scopeSha256",
    "unit_size": "unitSize",
    "unit_count": "unitCount",
    "units_published": "unitsPublished",
    "hand_overs": "handOvers",
    "execution_arn": "executionArn",
}


class DynamoCheckpointStore:
    def __init__(self, client: DynamoDBClient, table: str, clock: Clock) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def peek(self, job: JobRef) -> WalkState | None:
        reply = self._client.get_item(
            TableName=self._table, Key=_walk_key(job.job_id), ConsistentRead=True
        )
        item = reply.get("Item")
        if item is None or "runId" not in item:
            return None
        # The company the walk was started for, not the caller's: a trigger naming another
        # company must see that it differs (TenantMismatch).
        walked = JobRef(job.job_id, _company_of(item))
        return _state(walked, item.get("leaseOwner", {}).get("S", ""), item)

    def walks(self) -> Iterator[WalkState]:
        """Every job's walk record, as `peek` reads one (for the operator's `list`). A scan:
        the table has no index by kind of record, and walk records are a small share of it."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :walk AND attribute_exists(runId)",
            ExpressionAttributeValues={":walk": {"S": WALK_SK}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                job = JobRef(job_of_walk_pk(str(item["pk"]["S"])), _company_of(item))
                yield _state(job, item.get("leaseOwner", {}).get("S", ""), item)

    def begin(
        self,
        job: JobRef,
        owner: str,
        lease_seconds: float,
        ticket: LoopTicket | None,
        *,
        take_over_from: int | None = None,
    ) -> WalkState:
        now = self._clock.now().timestamp()
        values: dict[str, AttributeValueTypeDef] = {
            ":owner": {"S": owner},
            ":until": {"N": str(int(now + lease_seconds) + 1)},
            ":now": {"N": str(int(now))},
        }
        condition = "attribute_not_exists(pk) OR leaseExpiresAt < :now OR leaseOwner = :owner"
        # A trigger may take over from the loop of a hand-over whose execution is closed. A
        # loop invocation never takes over from its own hand-over's: a retried task's first
        # attempt may still run (fencing), and a dead one's lease runs out (its time-out
        # plus the safety margin), sooner than the loop's retries give up.
        if take_over_from is not None:
            condition += " OR leaseHandOver = :dead"
            values[":dead"] = {"N": str(take_over_from)}
        update = "SET leaseOwner = :owner, leaseExpiresAt = :until"
        remove = " REMOVE finalError"  # the job check passed: the walk goes on
        if ticket is None:
            remove += ", leaseHandOver"
        else:
            update += ", leaseHandOver = :mine"
            values[":mine"] = {"N": str(ticket.hand_over)}
        update += remove
        try:
            reply = self._client.update_item(
                TableName=self._table,
                Key=_walk_key(job.job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failed(error):
                raise WalkInProgress(
                    f"{job} is held by another invocation; try again later"
                ) from None
            raise
        item = reply["Attributes"]
        if "runId" not in item or (item["phase"]["S"] == "published" and ticket is None):
            return self._start_run(job, owner, int(item.get("runId", {"N": "0"})["N"]) + 1)
        return _state(job, owner, item)

    def restart(self, state: WalkState) -> WalkState:
        return self._start_run(state.job, state.owner, state.run_id + 1)

    def _start_run(self, job: JobRef, owner: str, run_id: int) -> WalkState:
        values: dict[str, AttributeValueTypeDef] = {
            ":run": {"N": str(run_id)},
            ":walking": {"S": "walking"},
            ":zero": {"N": "0"},
            ":started": {"S": iso_utc(self._clock.now())},
            ":expires": {"N": str(self._expires_at())},
            ":owner": {"S": owner},
        }
        company = ""
        if job.company_id is not None:  # the run's company, for `walks` (None: default tenant)
            company = ", companyId = :company"
            values[":company"] = {"S": job.company_id}
        reply = self._client.update_item(
            TableName=self._table,
            Key=_walk_key(job.job_id),
            UpdateExpression=(
                "SET runId = :run, phase = :walking, pagesFetched = :zero, itemsPublished = :zero,"
                f" startedAt = :started, expiresAt = :expires{company}"
                # Nothing of the run before: its unit counters are not this run's progress.
                " REMOVE #after, itemsInScope, scopeSha256, unitSize, unitCount, unitsPublished,"
                " finalError"
            ),
            ConditionExpression="leaseOwner = :owner",
            ExpressionAttributeNames={"#after": "after"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _state(job, owner, reply["Attributes"])

    def advance(
        self,
        state: WalkState,
        position: WalkPosition,
        *,
        complete: bool = False,
        followed: Sequence[FollowedCursor] = (),
    ) -> WalkState:
        values: dict[str, AttributeValueTypeDef] = {
            ":owner": {"S": state.owner},
            ":expected": {"N": str(state.pages_fetched)},
            ":pages": {"N": str(position.pages_fetched)},
        }
        expression = "SET pagesFetched = :pages"
        if complete:
            expression += ", phase = :walked"
            values[":walked"] = {"S": "walked"}
        if position.after is None:
            expression += " REMOVE #after"
        else:
            expression += ", #after = :after"
            values[":after"] = {"S": position.after}
        move: dict[str, Any] = {
            "UpdateExpression": expression,
            "ConditionExpression": "leaseOwner = :owner AND pagesFetched = :expected",
            "ExpressionAttributeNames": {"#after": "after"},
            "ExpressionAttributeValues": values,
        }
        if followed:
            self._advance_recording(state, move, followed)
        else:
            self._conditional_update(state, **move)
        moved = state.but(after=position.after, pages_fetched=position.pages_fetched)
        return moved.but(phase="walked") if complete else moved

    def _advance_recording(
        self, state: WalkState, move: dict[str, Any], followed: Sequence[FollowedCursor]
    ) -> None:
        """One transaction: a record per followed cursor and run (conditional: new, or for
        the same page), then the move (conditional on the lease), so that the checkpoint
        never passes a page whose cursor is not recorded. Idempotent when botocore retries
        it (its ClientRequestToken)."""
        expires = {"N": str(self._expires_at())}
        records: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": {"S": cursor_pk(state.job_id, state.run_id, f.cursor)},
                        "sk": {"S": CURSOR_SK},
                        "page": {"N": str(f.page_number)},
                        "expiresAt": expires,
                    },
                    "ConditionExpression": "attribute_not_exists(pk) OR page = :page",
                    "ExpressionAttributeValues": {":page": {"N": str(f.page_number)}},
                }
            }
            for f in followed
        ]
        walk: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self._table,
                "Key": _walk_key(state.job_id),
                "UpdateExpression": move["UpdateExpression"],
                "ConditionExpression": move["ConditionExpression"],
                "ExpressionAttributeNames": move["ExpressionAttributeNames"],
                "ExpressionAttributeValues": move["ExpressionAttributeValues"],
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[*records, walk])
        except ClientError as error:
            if _last_write_refused(error):
                raise _checkpoint_moved(state) from None
            # The cursors' records come first; the walk record's write is past them.
            refused_writes = zip(followed, _refused_writes(error), strict=False)
            repeated = [f for f, refused in refused_writes if refused]
            if repeated:
                page = repeated[0].page_number
                raise RepeatedCursor(
                    f"export job {state.job_id}, page {page}:"
                    " endCursor repeats a cursor the walk already followed"
                ) from None
            raise

    def update(self, state: WalkState, **changes: Any) -> WalkState:
        attributes = {_ATTRIBUTE_OF[name]: value for name, value in changes.items()}
        self._conditional_update(
            state,
            UpdateExpression="SET " + ", ".join(f"#{a} = :{a}" for a in attributes),
            ConditionExpression="leaseOwner = :owner",
            ExpressionAttributeNames={f"#{a}": a for a in attributes},
            ExpressionAttributeValues={
                ":owner": {"S": state.owner},
                **{f":{a}": _attribute(value) for a, value in attributes.items()},
            },
        )
        return state.but(**changes)

    def confirm(self, state: WalkState) -> None:
        now = self._clock.now().timestamp()
        if state.lease_hand_over is None and now < state.lease_expires_at - CLOCK_SKEW_SECONDS:
            # A trigger's lease (no hand-over): `begin` lets nobody else take it before it
            # expires (only a hand-over's lease may be taken over early, once its execution
            # is closed), so the read would only say what this invocation wrote.
            return
        reply = self._client.get_item(
            TableName=self._table,
            Key=_walk_key(state.job_id),
            ConsistentRead=True,
            ProjectionExpression="leaseOwner, leaseExpiresAt, runId",
        )
        item = reply.get("Item", {})
        owner = item.get("leaseOwner", {}).get("S")
        until = int(item.get("leaseExpiresAt", {}).get("N", "0"))
        run = int(item.get("runId", {}).get("N", "0"))
        if owner != state.owner or until <= now or run != state.run_id:
            raise WalkInProgress(
                f"export job {state.job_id}: this invocation no longer holds the walk's lease"
                " (another invocation took it over); it writes nothing more"
            )

    def release(self, state: WalkState) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_walk_key(state.job_id),
                UpdateExpression="SET leaseExpiresAt = :zero",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":owner": {"S": state.owner}},
            )
        except ClientError as error:
            if not _conditional_failed(error):  # someone else holds it now: nothing to release
                raise

    def finish(self, state: WalkState) -> WalkState:
        self._conditional_update(
            state,
            UpdateExpression="SET phase = :published, leaseExpiresAt = :zero",
            ConditionExpression="leaseOwner = :owner",
            ExpressionAttributeValues={
                ":published": {"S": "published"},
                ":zero": {"N": "0"},
                ":owner": {"S": state.owner},
            },
        )
        return state.but(phase="published", lease_expires_at=0)

    def record_final_error(self, job: JobRef, owner: str, error: FinalError) -> None:
        now = int(self._clock.now().timestamp())
        # Only on a walk of the same company: a trigger naming another company (refused as
        # TenantMismatch, UnknownTenant...) must not mark that company's walk failed.
        values: dict[str, AttributeValueTypeDef] = {}
        same_company = "attribute_not_exists(companyId)"
        if job.company_id is not None:
            same_company = "companyId = :company"
            values[":company"] = {"S": job.company_id}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_walk_key(job.job_id),
                UpdateExpression="SET finalError = :error",
                ConditionExpression=(
                    f"attribute_exists(runId) AND {same_company}"
                    " AND (leaseOwner = :owner OR leaseExpiresAt < :now)"
                ),
                ExpressionAttributeValues={
                    **values,
                    ":error": {
                        "M": {
                            "name": {"S": error.name},
                            "cause": {"S": error.cause},
                            "jobStatus": _attribute(error.job_status),
                            "at": {"S": error.at},
                        }
                    },
                    ":owner": {"S": owner},
                    ":now": {"N": str(now)},
                },
            )
        except ClientError as failure:
            if not _conditional_failed(failure):  # no walk, or another invocation holds it
                raise

    def load(self, job_id: str) -> dict[str, Any] | None:
        """The raw walk record (for tools and tests)."""
        reply = self._client.get_item(
            TableName=self._table, Key=_walk_key(job_id), ConsistentRead=True
        )
        item = reply.get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def publish_progress(
        self,
        state: WalkState,
        alongside: Sequence[TransactWriteItemTypeDef],
        *,
        units_published: int,
        items_published: int,
    ) -> WalkState:
        """Move the walk record's unit progress in ONE transaction with `alongside` (the
        ledger's unit records, which the ledger owns): all or none, under the lease and in
        the walk's run, so the checkpoint never claims a unit the ledger lacks. The walk
        record's half is this store's, as every other write to that record."""
        progress: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self._table,
                "Key": _walk_key(state.job_id),
                "UpdateExpression": "SET unitsPublished = :units, itemsPublished = :items",
                "ConditionExpression": "leaseOwner = :owner AND runId = :run",
                "ExpressionAttributeValues": {
                    ":units": {"N": str(units_published)},
                    ":items": {"N": str(items_published)},
                    ":owner": {"S": state.owner},
                    ":run": {"N": str(state.run_id)},
                },
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[*alongside, progress])
        except ClientError as error:
            if _last_write_refused(error):
                raise _checkpoint_moved(state) from None
            raise
        return state.but(units_published=units_published, items_published=items_published)

    def _conditional_update(self, state: WalkState, **request: Any) -> None:
        try:
            self._client.update_item(TableName=self._table, Key=_walk_key(state.job_id), **request)
        except ClientError as error:
            if _conditional_failed(error):
                raise _checkpoint_moved(state) from None
            raise

    def _expires_at(self) -> int:
        return int(self._clock.now().timestamp()) + RETENTION_SECONDS


def _walk_key(job_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": walk_pk(job_id)}, "sk": {"S": WALK_SK}}


def _attribute(value: object) -> AttributeValueTypeDef:
    if value is None:
        return {"NULL": True}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def _state(job: JobRef, owner: str, item: dict[str, Any]) -> WalkState:
    def number(name: str) -> int | None:
        return int(item[name]["N"]) if "N" in item.get(name, {}) else None

    def text(name: str) -> str | None:
        return str(item[name]["S"]) if "S" in item.get(name, {}) else None

    return WalkState(
        job_id=job.job_id,
        company_id=job.company_id,
        run_id=number("runId") or 0,
        phase=item["phase"]["S"],
        after=text("after"),
        pages_fetched=number("pagesFetched") or 0,
        items_published=number("itemsPublished") or 0,
        started_at=text("startedAt") or "",
        owner=owner,
        items_in_scope=number("itemsInScope"),
        scope_sha256=text("scopeSha256"),
        unit_size=number("unitSize"),
        unit_count=number("unitCount"),
        units_published=number("unitsPublished") or 0,
        hand_overs=number("handOvers") or 0,
        execution_arn=text("executionArn"),
        lease_expires_at=number("leaseExpiresAt") or 0,
        lease_hand_over=number("leaseHandOver"),
        final_error=_final_error(item.get("finalError", {}).get("M")),
    )


def _company_of(item: dict[str, Any]) -> str | None:
    """The company a run was started for (absent: the default tenant)."""
    company = item.get("companyId", {}).get("S")
    return None if company is None else str(company)


def _final_error(fields: dict[str, Any] | None) -> FinalError | None:
    if fields is None:
        return None
    job_status = fields.get("jobStatus", {}).get("S")
    return FinalError(
        name=str(fields["name"]["S"]),
        cause=str(fields["cause"]["S"]),
        job_status=None if job_status is None else str(job_status),
        at=str(fields["at"]["S"]),
    )


def _checkpoint_moved(state: WalkState) -> WalkInProgress:
    return WalkInProgress(
        f"export job {state.job_id}: the checkpoint moved under this invocation"
        " (its lease expired and another invocation took over)"
    )


def _refused_writes(error: ClientError) -> list[bool]:
    """Per write of a cancelled transaction, whether it failed its condition (none for
    another error)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]


def _last_write_refused(error: ClientError) -> bool:
    """A cancelled transaction whose last write (the walk record's) failed its condition."""
    refused = _refused_writes(error)
    return bool(refused) and refused[-1]


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
