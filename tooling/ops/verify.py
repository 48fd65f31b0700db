"""`verify JOB`: re-read what a job published and check it against itself.

The run's scope.jsonl against its manifest (sha256, counts, order, serialisation) and the walk
record; the job's pointer against the run it names; the publish ledger against the scope
(every in-scope item enqueued once). Streams the scope: memory stays flat whatever its size.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.aws.keys import pointer_key, run_manifest_key, run_scope_key
from pleo_scope.aws.ledger import DynamoPublishLedger
from pleo_scope.clock import SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.models import IN_SCOPE_STATUSES, decode_json
from pleo_scope.ports import WalkState
from pleo_scope.publishing import entry_hash
from pleo_scope.scope import ORDERING, SCHEMA_VERSION, serialize_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

SHOWN = 5  # differences named in a check's detail; the rest are counted


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    job_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "ok": self.ok,
            "checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


@dataclass
class _Differences:
    """Positions (and what) that differ: the first few named, all counted."""

    count: int = 0
    shown: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.shown) < SHOWN:
            self.shown.append(what)

    def describe(self, ok_text: str) -> str:
        if not self.count:
            return ok_text
        more = f" and {self.count - len(self.shown)} more" if self.count > len(self.shown) else ""
        return "; ".join(self.shown) + more


class Verifier:
    def __init__(self, dynamodb: DynamoDBClient, s3: S3Client, table: str, bucket: str) -> None:
        clock = SystemClock()
        self._checkpoints = DynamoCheckpointStore(dynamodb, table, clock)
        self._ledger = DynamoPublishLedger(dynamodb, table, clock, self._checkpoints)
        self._bucket = bucket
        self._s3 = s3

    def verify(self, job_id: str) -> Verification:
        result = Verification(job_id)
        record = self._checkpoints.peek(JobRef(job_id))
        if record is None:
            result.add("walk record", False, "none: the job was never triggered on this stack")
            return result
        if record.phase not in ("scoped", "published"):
            result.add(
                "scope written",
                False,
                f"phase {record.phase}: run {record.run_id}'s scope is written once its walk ends",
            )
            return result
        run = record.run_id
        manifest = self._manifest(result, "manifest", run_manifest_key(job_id, run), job_id, run)
        if manifest is None:
            return result
        if record.phase == "published":
            self._check_pointer(result, job_id, run)
        body = self._s3.get_object(Bucket=self._bucket, Key=run_scope_key(job_id, run))["Body"]
        # Only a published job has every item on the queue.
        published = record.phase == "published"
        self._check_scope(result, job_id, _lines(body), manifest, record, published)
        return result

    def _read(self, key: str) -> bytes | None:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return body

    def _manifest(
        self, result: Verification, check: str, key: str, job_id: str, run: int
    ) -> dict[str, Any] | None:
        where = f"s3://{self._bucket}/{key}"
        raw = self._read(key)
        if raw is None:
            result.add(check, False, f"{where} is missing")
            return None
        try:
            manifest: dict[str, Any] = json.loads(raw)
        except ValueError as error:
            result.add(check, False, f"{where} is not JSON: {error}")
            return None
        wrong = [
            f"{name} is {manifest.get(name)!r}, not {want!r}"
            for name, want in (
                ("jobId", job_id),
                ("runId", run),
                ("scopeKey", run_scope_key(job_id, run)),
                ("ordering", ORDERING),
                ("schemaVersion", SCHEMA_VERSION),
            )
            if manifest.get(name) != want
        ]
        result.add(check, not wrong, "; ".join(wrong) or where)
        return manifest

    def _check_pointer(self, result: Verification, job_id: str, run: int) -> None:
        """The job's scope.json is a copy of the manifest of the run it names, and a published
        job's pointer names its current run."""
        where = f"s3://{self._bucket}/{pointer_key(job_id)}"
        pointer = self._read(pointer_key(job_id))
        if pointer is None:
            result.add("pointer", False, f"{where} is missing")
            return
        try:
            named = json.loads(pointer).get("runId")
        except (ValueError, AttributeError) as error:
            result.add("pointer", False, f"{where} is not a manifest: {error}")
            return
        if named != run:
            result.add("pointer", False, f"{where} names run {named!r}, not run {run}")
            return
        same = pointer == self._read(run_manifest_key(job_id, run))
        detail = f"{where} is run {run}'s manifest" + ("" if same else ", but its bytes differ")
        result.add("pointer", same, detail)

    def _check_scope(
        self,
        result: Verification,
        job_id: str,
        lines: Iterator[bytes],
        manifest: dict[str, Any],
        record: WalkState,
        published: bool,
    ) -> None:
        digest = hashlib.sha256()
        statuses: Counter[str] = Counter()
        order, form, ledger = _Differences(), _Differences(), _Differences()
        previous: str | None = None
        count = 0
        # How often each in-scope item was enqueued, by the hash the ledger keeps of its id.
        recorded = Counter(self._ledger.recorded_hashes(job_id)) if published else None

        for position, line in enumerate(lines):
            digest.update(line)
            count += 1
            try:
                item = decode_json(line)
            except ValueError as error:  # NaN and Infinity too: Python reads them, JSON not
                form.add(f"line {position} is not JSON ({error})")
                continue
            try:
                entry_id, status = str(item["accountingEntryId"]), str(item["status"])
            except (KeyError, TypeError):
                form.add(f"line {position} is not an item")
                continue
            if serialize_item(item) != line:
                form.add(f"line {position} is not in canonical form")
            statuses[status] += 1
            if status not in IN_SCOPE_STATUSES:
                form.add(f"line {position} has status {status!r}, which is not in scope")
            if previous is not None and not previous < entry_id:
                order.add(f"line {position} ({entry_id}) does not follow {previous}")
            previous = entry_id
            if recorded is not None:
                times = recorded.get(entry_hash(entry_id), 0)
                if times != 1:
                    what = "has no ledger record" if not times else f"was enqueued {times} times"
                    ledger.add(f"line {position} ({entry_id}) {what}")

        sha256 = digest.hexdigest()
        sha_wrong = [
            f"{where} says {value}"
            for where, value in (
                ("the manifest", manifest.get("sha256")),
                ("the walk record", record.scope_sha256 or sha256),
            )
            if value != sha256
        ]
        result.add(
            "sha256",
            not sha_wrong,
            f"scope.jsonl is {sha256}" + ("; " + "; ".join(sha_wrong) if sha_wrong else ""),
        )
        count_wrong = [
            f"{where} says {value}"
            for where, value in (
                ("the manifest", manifest.get("itemCount")),
                (
                    "the walk record",
                    count if record.items_in_scope is None else record.items_in_scope,
                ),
            )
            if value != count
        ]
        result.add(
            "item count",
            not count_wrong,
            f"{count} lines" + ("; " + "; ".join(count_wrong) if count_wrong else ""),
        )
        counted = dict(sorted(statuses.items()))
        result.add(
            "counts by status",
            counted == manifest.get("countsByStatus"),
            f"lines {counted}, manifest {manifest.get('countsByStatus')}",
        )
        result.add("order", not order.count, order.describe("accountingEntryId strictly ascending"))
        result.add("serialisation", not form.count, form.describe("every line canonical"))
        if recorded is None:
            result.add("ledger", True, "not checked: the job is still publishing")
        else:
            result.add("ledger", not ledger.count, ledger.describe("every item enqueued once"))


def _lines(body: Any) -> Iterator[bytes]:
    """The object's lines, each with its newline (a last line without one is kept as is)."""
    rest = b""
    for chunk in body.iter_chunks(1 << 20):
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if rest:
        yield rest
