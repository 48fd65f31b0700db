"""One immutable scope per run (issue 19, contract v3): a re-walk writes run 2's files beside
run 1's, never over them; units name their own run's file; the job's pointer moves to run 2
only once run 2 is published."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pleo_scope.aws.keys import pointer_key, run_manifest_key, run_scope_key
from tooling.pleo_sim import SimJob
from tooling.testkit.harness import Stack

NEW_ID = "00000000-0000-4000-8000-00000000000a"  # sorts first


def rewalk_changes(stack: Stack, job: SimJob) -> None:
    """Past the idempotency window, Pleo finished one item and appended another."""
    stack.forget_idempotency()
    first = json.loads(stack.s3_object(run_scope_key(job.id, 1)).splitlines()[0])
    job.status_overrides[first["accountingEntryId"]] = "successful"
    job.items.append({**first, "accountingEntryId": NEW_ID, "status": "pending"})


def assert_unit_points_at_its_run(stack: Stack, unit: dict[str, Any], run: int) -> None:
    scope = stack.s3_object(run_scope_key(unit["jobId"], run))
    assert unit["runId"] == run
    assert unit["scope"] == {
        "bucket": stack.aws.physical["ScopeBucket"],
        "key": run_scope_key(unit["jobId"], run),
        "sha256": hashlib.sha256(scope).hexdigest(),
    }
    lines = scope.splitlines()
    for item in unit["items"]:  # each position is the item's line in that very file
        line = json.loads(lines[item["position"]])
        assert (line["accountingEntryId"], line["status"]) == (
            item["accountingEntryId"],
            item["status"],
        )


def test_a_rewalk_leaves_run_1_s_scope_as_it_was_for_the_units_still_queued(
    stack: Stack,
) -> None:
    job = stack.new_job(items=30)
    first = stack.invoke({"jobId": job.id})
    assert first["runId"] == 1
    assert first["scope"]["key"] == run_scope_key(job.id, 1)
    assert first["scope"]["manifestKey"] == run_manifest_key(job.id, 1)
    run_1_scope = stack.s3_object(run_scope_key(job.id, 1))
    run_1_manifest = stack.s3_object(run_manifest_key(job.id, 1))
    assert stack.s3_object(pointer_key(job.id)) == run_1_manifest
    queued = stack.drain_queue()  # run 1's units, not yet consumed when the re-walk comes

    rewalk_changes(stack, job)
    second = stack.invoke({"jobId": job.id})
    assert (second["done"], second["runId"], second["companyId"]) == (True, 2, None)
    assert second["scope"] == {
        "bucket": stack.aws.physical["ScopeBucket"],
        "key": run_scope_key(job.id, 2),
        "manifestKey": run_manifest_key(job.id, 2),
    }
    # Run 1's files: byte-identical and readable; its units still match them.
    assert stack.s3_object(run_scope_key(job.id, 1)) == run_1_scope
    assert stack.s3_object(run_manifest_key(job.id, 1)) == run_1_manifest
    for unit in queued:
        assert_unit_points_at_its_run(stack, unit, 1)
    # Run 2: its own files, the job's current state; its one new unit points at them.
    run_2_scope = stack.s3_object(run_scope_key(job.id, 2))
    assert run_2_scope == stack.expected_scope(job) != run_1_scope
    [unit] = stack.drain_queue()
    assert_unit_points_at_its_run(stack, unit, 2)
    assert [i["accountingEntryId"] for i in unit["items"]] == [NEW_ID]
    manifest = json.loads(stack.s3_object(run_manifest_key(job.id, 2)))
    assert (manifest["schemaVersion"], manifest["runId"], manifest["companyId"]) == (2, 2, None)
    assert manifest["scopeKey"] == run_scope_key(job.id, 2)
    assert manifest["sha256"] == hashlib.sha256(run_2_scope).hexdigest()
    # The pointer, written last, is now run 2's manifest.
    assert stack.s3_object(pointer_key(job.id)) == stack.s3_object(run_manifest_key(job.id, 2))


class _FailingManifestWrites:
    """An S3 client whose writes of a run's manifest fail (an S3 outage at that moment)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.refused = 0

    def put_object(self, **request: Any) -> Any:
        if "/runs/" in request["Key"] and request["Key"].endswith("/scope.json"):
            self.refused += 1
            error = {"Error": {"Code": "InternalError", "Message": "injected"}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]
        return self._inner.put_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def failing_manifest_writes(stack: Stack) -> Iterator[_FailingManifestWrites]:
    archive = stack.app.app.service.archive
    original = archive._client
    archive._client = _FailingManifestWrites(original)
    try:
        yield archive._client
    finally:
        archive._client = original


def test_a_rewalk_whose_manifest_write_fails_leaves_run_1_published_and_untouched(
    stack: Stack, failing_manifest_writes: _FailingManifestWrites
) -> None:
    job = stack.new_job(items=30)
    archive = stack.app.app.service.archive
    archive._client = failing_manifest_writes._inner  # run 1 goes through
    stack.invoke({"jobId": job.id})
    stack.drain_queue()
    run_1 = {key: stack.s3_object(key) for key in (run_scope_key(job.id, 1), pointer_key(job.id))}

    rewalk_changes(stack, job)
    archive._client = failing_manifest_writes
    with pytest.raises(ClientError, match="injected"):
        stack.invoke({"jobId": job.id})
    assert failing_manifest_writes.refused == 1
    # Run 2's scope.jsonl sits in run 2's place; run 1 and the pointer are as they were.
    assert stack.s3_object(run_scope_key(job.id, 2)) == stack.expected_scope(job)
    assert run_manifest_key(job.id, 2) not in stack.s3_keys(job.id)
    assert {key: stack.s3_object(key) for key in run_1} == run_1
    assert stack.drain_queue() == []  # nothing of run 2 was published

    archive._client = failing_manifest_writes._inner  # S3 is back: the re-sent trigger
    again = stack.invoke({"jobId": job.id})
    assert (again["done"], again["runId"]) == (True, 2)
    assert stack.s3_object(run_scope_key(job.id, 1)) == run_1[run_scope_key(job.id, 1)]
    assert stack.s3_object(pointer_key(job.id)) == stack.s3_object(run_manifest_key(job.id, 2))
    [unit] = stack.drain_queue()
    assert_unit_points_at_its_run(stack, unit, 2)
