"""What an operator asks of a job: where its walk stands, who owns it, and whether it is stuck.

Read through the function's own adapters: the walk record as the checkpoint store's typed
`WalkState`, the S3 layout from `pleo_scope.aws.keys`, execution names via
`pleo_scope.aws.hand_over`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.aws.hand_over import StepFunctionsHandOver
from pleo_scope.aws.keys import pointer_key, run_manifest_key, run_scope_key
from pleo_scope.clock import SystemClock
from pleo_scope.contract import ExecutionName, JobRef
from pleo_scope.errors import FINAL_ERRORS
from pleo_scope.ports import WalkState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

Verdict = Literal["published", "running", "stuck", "failed"]
RETRIGGER = "pleo-scope-ops retrigger {job}"


def _all_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


FINAL_NAMES = frozenset(
    cls.__name__ for family in FINAL_ERRORS for cls in (family, *_all_subclasses(family))
)
"""The error names that end a run for good (errors.FINAL_ERRORS and their subclasses)."""

SETTINGS_THEN_RESEND = "fix {what}, then re-send the trigger: " + RETRIGGER
REMEDIES = {
    "JobNotClaimed": (
        "nothing to re-send: Pleo no longer has the job in progress, so the run stopped"
        " before enqueueing anything more; if its items still need exporting, start a new"
        " export job in Pleo"
    ),
    "JobNotFound": "nothing to re-send: the job no longer exists in Pleo",
    "InvalidSecret": SETTINGS_THEN_RESEND.format(
        what="the credential secret (JSON holding apiKey or accessToken)", job="{job}"
    ),
    "CredentialRejected": SETTINGS_THEN_RESEND.format(
        what="the credential (Pleo answered 401 twice): put a valid one in the secret",
        job="{job}",
    ),
    "PermissionDenied": SETTINGS_THEN_RESEND.format(
        what="the credential's scopes (it needs export-jobs:read)", job="{job}"
    ),
    "PageSizeRejected": SETTINGS_THEN_RESEND.format(
        what="PLEO_PAGE_SIZE (above Pleo's maximum)", job="{job}"
    ),
    "UnitTooLarge": SETTINGS_THEN_RESEND.format(what="SCOPE_UNIT_SIZE (lower it)", job="{job}"),
    "TooManyPages": SETTINGS_THEN_RESEND.format(
        what="PLEO_MAX_PAGES (the job has more pages)", job="{job}"
    ),
    "MissingCursor": (
        "Pleo's pagination cannot be trusted (hasNextPage without a cursor): report it to"
        " Pleo; re-send the trigger once Pleo fixed it: " + RETRIGGER
    ),
    "UnknownTenant": SETTINGS_THEN_RESEND.format(
        what="the tenant registry (add the company: pleo-scope-ops tenant add)", job="{job}"
    ),
    "TenantDisabled": SETTINGS_THEN_RESEND.format(
        what="the company's status if it should walk (pleo-scope-ops tenant enable)", job="{job}"
    ),
    "RelinkNeeded": SETTINGS_THEN_RESEND.format(
        what="the company's OAuth grant (it must install the app again; store the new grant"
        " with pleo-scope-ops tenant set-credential COMPANY --oauth); the walk resumes from"
        " its checkpoint",
        job="{job}",
    ),
    "InvalidTenantRecord": SETTINGS_THEN_RESEND.format(
        what="the company's registry record (pleo-scope-ops tenant show COMPANY)", job="{job}"
    ),
    "TenantMismatch": (
        "nothing to re-send under that company: the job was walked for another one (the"
        " company shown here); a trigger for it must name that company"
    ),
    "RepeatedCursor": (
        "Pleo's pagination cannot be trusted (a cursor came back): report it to Pleo; re-send"
        " the trigger once Pleo fixed it: " + RETRIGGER
    ),
}
GENERIC_REMEDY = "fix the cause above, then re-send the trigger: " + RETRIGGER


def remedy(error_name: str, job_id: str) -> str:
    return REMEDIES.get(error_name, GENERIC_REMEDY).format(job=job_id)


@dataclass(frozen=True)
class Execution:
    arn: str
    status: str
    started: str | None
    stopped: str | None
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class Failure:
    """The final error that ended the job's run: what it was, and what fixes it."""

    error: str
    cause: str
    job_status: str | None
    """Pleo's status of the job when the walk last checked it (None: unknown)."""
    remedy: str
    source: str
    """Where it was read: "walk record" or "execution"."""

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "cause": self.cause,
            "jobStatus": self.job_status,
            "remedy": self.remedy,
            "source": self.source,
        }


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    company_id: str | None
    """The company the walk is for (None: the default tenant)."""
    verdict: Verdict
    reason: str
    next_step: str | None
    phase: str
    run: int
    started_at: str | None
    age_seconds: float | None
    pages_fetched: int
    items_in_scope: int | None
    items_published: int
    units_published: int | None
    unit_count: int | None
    lease_owner: str | None
    lease_expires_at: str | None
    lease_held: bool
    execution: Execution | None
    scope_uri: str
    """The current run's scope.jsonl (contract v3: each run has its own)."""
    manifest_uri: str
    scope_written: bool
    """The current run's manifest exists (written after its scope.jsonl)."""
    scope_sha256: str | None
    published_run: int | None
    """The run the job's pointer names: its latest published run, whose scope consumers read."""
    failure: Failure | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "companyId": self.company_id,
            "state": self.verdict,
            "reason": self.reason,
            "nextStep": self.next_step,
            "phase": self.phase,
            "runId": self.run,
            "startedAt": self.started_at,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds),
            "pagesFetched": self.pages_fetched,
            "itemsInScope": self.items_in_scope,
            "itemsPublished": self.items_published,
            "unitsPublished": self.units_published,
            "unitCount": self.unit_count,
            "lease": {
                "owner": self.lease_owner,
                "expiresAt": self.lease_expires_at,
                "held": self.lease_held,
            },
            "execution": None
            if self.execution is None
            else {
                "arn": self.execution.arn,
                "status": self.execution.status,
                "startedAt": self.execution.started,
                "stoppedAt": self.execution.stopped,
            },
            "scope": {
                "uri": self.scope_uri,
                "manifestUri": self.manifest_uri,
                "written": self.scope_written,
                "sha256": self.scope_sha256,
                "publishedRun": self.published_run,
            },
            "failure": None if self.failure is None else self.failure.as_json(),
        }


class JobNotKnown(Exception):
    """No walk record: the job was never triggered here (or its record expired)."""


class Jobs:
    """Reads for the operator; never writes anything."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        sfn: SFNClient | None,
        table: str,
        bucket: str | None,
        state_machine_arn: str | None,
    ) -> None:
        clock = SystemClock()
        self._clock = clock
        self._checkpoints = DynamoCheckpointStore(dynamodb, table, clock)
        self._s3 = s3
        self._bucket = bucket
        self._sfn = sfn
        self._state_machine_arn = state_machine_arn

    def status(self, job_id: str) -> JobStatus:
        record = self._checkpoints.peek(JobRef(job_id))
        if record is None:
            raise JobNotKnown(
                f"export job {job_id} has no walk record: it was never triggered on this stack"
                " (or its record expired, 90 days after its last run)"
            )
        executions = self._executions(job_id, "RUNNING")
        return self._assess(job_id, record, self._owning_execution(record, executions))

    def company_of(self, job_id: str) -> str | None:
        """The company the job's walk is for (None: the default tenant, or no walk yet)."""
        record = self._checkpoints.peek(JobRef(job_id))
        return None if record is None else record.company_id

    def unpublished(self, include_published: bool = False) -> list[JobStatus]:
        """Every job not yet published: stuck ones first, then failed ones, then the oldest
        first."""
        running = self._executions(None, "RUNNING")
        found = []
        for record in self._checkpoints.walks():
            if record.phase == "published" and not include_published:
                continue
            job_id = record.job_id
            mine = [e for e in running if _of_job(e.arn, job_id)]
            found.append(self._assess(job_id, record, self._owning_execution(record, mine)))
        order = {"stuck": 0, "failed": 1, "running": 2, "published": 3}
        return sorted(found, key=lambda s: (order[s.verdict], -(s.age_seconds or 0.0)))

    # -- reading -------------------------------------------------------------------------

    def _owning_execution(self, record: WalkState, running: list[Execution]) -> Execution | None:
        """The execution the record names, or the continue-as-new generation that followed
        it, when running (the adapter's rule); else a running one of the job's that the
        record does not name; else the named one, closed."""
        if self._sfn is None or self._state_machine_arn is None:
            return None
        named = record.execution_arn
        if named:
            hand_over = StepFunctionsHandOver(self._sfn, self._state_machine_arn)
            live = hand_over.running_execution(named)
            if live is not None:
                return self._describe(live)
        if running:
            return running[-1]
        return self._describe(named) if named else None

    def _executions(self, job_id: str | None, status: str | None = None) -> list[Execution]:
        """The state machine's executions (of one job, or all), oldest first."""
        if self._sfn is None or self._state_machine_arn is None:
            return []
        request: dict[str, Any] = {"stateMachineArn": self._state_machine_arn}
        if status:
            request["statusFilter"] = status
        found = []
        for page in self._sfn.get_paginator("list_executions").paginate(**request):
            found += [
                Execution(e["executionArn"], e["status"], _iso(e.get("startDate")), None)
                for e in page["executions"]
                if job_id is None or _of_job(e["executionArn"], job_id)
            ]
        return sorted(found, key=lambda e: e.started or "")

    def _describe(self, arn: str) -> Execution | None:
        assert self._sfn is not None
        try:
            reply = self._sfn.describe_execution(executionArn=arn)
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return None
        return Execution(
            arn,
            reply["status"],
            _iso(reply.get("startDate")),
            _iso(reply.get("stopDate")),
            reply.get("error"),
            reply.get("cause"),
        )

    def _exists(self, key: str) -> bool:
        if self._bucket is None:
            return False
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.ClientError:
            return False
        return True

    def _published_run(self, job_id: str) -> int | None:
        """The run the job's pointer (the latest published run's manifest) names."""
        if self._bucket is None:
            return None
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=pointer_key(job_id))["Body"]
        except self._s3.exceptions.NoSuchKey:
            return None
        run = json.loads(body.read()).get("runId")
        return run if isinstance(run, int) else None

    # -- judging -------------------------------------------------------------------------

    def _assess(self, job_id: str, record: WalkState, execution: Execution | None) -> JobStatus:
        now = self._clock.now()
        phase = record.phase
        lease_until = record.lease_expires_at or None
        lease_held = lease_until is not None and lease_until > now.timestamp()
        running = execution is not None and execution.status == "RUNNING"
        verdict: Verdict
        next_step = None
        failure = None if phase == "published" else _failure(job_id, record, execution)
        if phase == "published":
            verdict, reason = "published", "every in-scope item is on the queue"
        elif lease_held:
            verdict, reason = "running", "an invocation holds the lease"
        elif running:
            assert execution is not None
            verdict, reason = "running", "its execution runs the walk (between invocations)"
        elif failure is not None:
            verdict = "failed"
            reason = (
                f"the run ended on the final error {failure.error} (a re-send alone does not help)"
            )
            next_step = failure.remedy
        else:
            verdict = "stuck"
            if execution is None:
                reason = "no invocation holds the lease and no execution runs the walk"
            else:
                reason = (
                    f"no invocation holds the lease and its last execution is {execution.status}"
                )
            next_step = (
                "re-send the trigger: "
                + RETRIGGER.format(job=job_id)
                + " (the walk continues from its checkpoint)"
            )
        started_at = record.started_at or None
        started = datetime.fromisoformat(started_at) if started_at else None
        run = record.run_id
        scope_key, manifest_key = run_scope_key(job_id, run), run_manifest_key(job_id, run)
        planned = record.unit_count is not None
        return JobStatus(
            job_id=job_id,
            company_id=record.company_id,
            verdict=verdict,
            reason=reason,
            next_step=next_step,
            phase=phase,
            run=run,
            started_at=started_at,
            age_seconds=(now - started).total_seconds() if started else None,
            pages_fetched=record.pages_fetched,
            items_in_scope=record.items_in_scope,
            items_published=record.items_published,
            units_published=record.units_published if planned else None,
            unit_count=record.unit_count,
            lease_owner=record.owner or None,
            lease_expires_at=_iso(datetime.fromtimestamp(lease_until, UTC))
            if lease_until
            else None,
            lease_held=lease_held,
            execution=execution,
            scope_uri=f"s3://{self._bucket}/{scope_key}" if self._bucket else "",
            manifest_uri=f"s3://{self._bucket}/{manifest_key}" if self._bucket else "",
            scope_written=self._exists(manifest_key),
            scope_sha256=record.scope_sha256,
            published_run=self._published_run(job_id),
            failure=failure if verdict == "failed" else None,
        )


def _failure(job_id: str, record: WalkState, execution: Execution | None) -> Failure | None:
    """The final error that ended the run: kept on the walk record by the function (whoever
    triggered it), or carried by the loop's Fail state (an execution FAILED on one)."""
    final = record.final_error
    if final is not None:
        return Failure(
            final.name, final.cause, final.job_status, remedy(final.name, job_id), "walk record"
        )
    if execution is None or execution.status != "FAILED" or execution.error not in FINAL_NAMES:
        return None
    cause = execution.cause or ""
    with contextlib.suppress(ValueError, AttributeError):  # Lambda's {"errorMessage", ...}
        cause = str(json.loads(cause).get("errorMessage", cause))
    return Failure(execution.error, cause, None, remedy(execution.error, job_id), "execution")


def _of_job(execution_arn: str, job_id: str) -> bool:
    """Execution names start with the job's id (contract.ExecutionName)."""
    name = execution_arn.rsplit(":", 1)[-1]
    return name.startswith(ExecutionName.job_prefix(job_id))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
