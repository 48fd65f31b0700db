"""S3: raw pages as they arrive, then scope.jsonl and its manifest once the walk is done."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING

from pleo_scope.errors import ArchivedPageMissing
from pleo_scope.models import JsonObject, decode_json, parse_page
from pleo_scope.ports import ScopeLocation

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_WORKERS = 8  # parallel GETs when the scope is rebuilt from the archived pages
READ_AHEAD = 32  # pages read ahead of the one being consumed (memory stays flat)


def job_prefix(job_id: str) -> str:
    return f"export-jobs/{job_id}/"


def page_key(job_id: str, run_id: int, number: int) -> str:
    return f"{job_prefix(job_id)}pages/run-{run_id:06d}/page-{number:07d}.json"


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

    def put_scope(self, job_id: str, jsonl: bytes, manifest: bytes) -> ScopeLocation:
        location = self.location(job_id)
        self._client.put_object(
            Bucket=self._bucket,
            Key=location.key,
            Body=jsonl,
            ContentType="application/x-ndjson; charset=utf-8",
        )
        # The manifest goes last: its presence means scope.jsonl is complete.
        self._client.put_object(
            Bucket=self._bucket,
            Key=location.manifest_key,
            Body=manifest,
            ContentType="application/json; charset=utf-8",
        )
        return location

    def get_scope(self, job_id: str) -> bytes:
        return self._get(self.location(job_id).key)

    def location(self, job_id: str) -> ScopeLocation:
        prefix = job_prefix(job_id)
        return ScopeLocation(self._bucket, f"{prefix}scope.jsonl", f"{prefix}scope.json")

    def _get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
