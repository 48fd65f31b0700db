"""S3: raw pages as they arrive; once the walk is done, the run's scope.jsonl and manifest,
each written once; after the publish, the job's pointer (the layout: `pleo_scope.aws.keys`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pleo_scope.aws.keys import (
    page_key,
    pointer_key,
    run_manifest_key,
    run_scope_key,
)
from pleo_scope.contract import ScopeLocation
from pleo_scope.errors import ArchivedPageMissing, ScopeConflict
from pleo_scope.models import JsonObject, decode_json, parse_page

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_WORKERS = 8  # parallel GETs when the scope is rebuilt from the archived pages
READ_AHEAD = 32  # pages read ahead of the one being consumed (memory stays flat)


class S3ScopeArchive:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_page(self, job_id: str, run_id: int, number: int, raw: bytes) -> None:
        self._client.put_object(
            Bucket=self._bucket,
            Key=page_key(job_id, run_id, number),
            Body=raw,
            ContentType="application/json",
        )

    def read_pages(
        self, job_id: str, run_id: int, count: int
    ) -> Generator[list[JsonObject], None, None]:
        def fetch(number: int) -> list[JsonObject]:
            try:
                body = self._get(page_key(job_id, run_id, number))
            except self._client.exceptions.NoSuchKey:
                raise ArchivedPageMissing(
                    f"export job {job_id}: page {number} of run {run_id} is not in the archive"
                ) from None
            return parse_page(decode_json(body), job_id).items

        # A sliding window of reads in flight keeps memory flat and S3 busy; results are
        # taken in page order.
        numbers = iter(range(1, count + 1))
        pool = ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="read-page")
        try:
            window = deque(pool.submit(fetch, n) for n in islice(numbers, READ_AHEAD))
            while window:
                items = window.popleft().result()
                number = next(numbers, None)
                if number is not None:
                    window.append(pool.submit(fetch, number))
                yield items
        finally:  # also when the reader stops early: nothing stays running
            pool.shutdown(wait=True, cancel_futures=True)

    def put_scope(
        self, job_id: str, run_id: int, jsonl: bytes, manifest: bytes, sha256: str
    ) -> ScopeLocation:
        """Write the run's files once: never over an existing one (a retry finds them, an
        earlier run's consumers keep reading theirs). A scope.jsonl already there must be
        these bytes; a manifest already there stands."""
        location = self.location(job_id, run_id)
        if not self._put_once(
            location.key,
            jsonl,
            "application/x-ndjson; charset=utf-8",
            metadata={"sha256": sha256},
        ):
            stored = self._client.head_object(Bucket=self._bucket, Key=location.key)
            if stored.get("Metadata", {}).get("sha256") != sha256:
                raise ScopeConflict(
                    f"export job {job_id}: run {run_id}'s scope.jsonl is already written,"
                    " with other bytes"
                )
        # The manifest goes last: its presence means scope.jsonl is complete.
        self._put_once(location.manifest_key, manifest, "application/json; charset=utf-8")
        return location

    def publish_pointer(self, job_id: str, run_id: int) -> None:
        """The job's pointer becomes a copy of the run's manifest (server side, exact)."""
        self._client.copy_object(
            Bucket=self._bucket,
            Key=pointer_key(job_id),
            CopySource={"Bucket": self._bucket, "Key": run_manifest_key(job_id, run_id)},
            ContentType="application/json; charset=utf-8",
            MetadataDirective="REPLACE",
        )

    def get_scope(self, job_id: str, run_id: int) -> bytes:
        return self._get(run_scope_key(job_id, run_id))

    def location(self, job_id: str, run_id: int) -> ScopeLocation:
        return ScopeLocation(
            self._bucket, run_scope_key(job_id, run_id), run_manifest_key(job_id, run_id)
        )

    def _put_once(
        self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None
    ) -> bool:
        """False when the key exists (S3's conditional put: If-None-Match)."""
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
                IfNoneMatch="*",
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def _get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
