"""The handler end to end: Pleo simulator and moto's server over HTTP, resources from
template.yaml, the sample events from events/."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from moto.sqs import models as moto_sqs_models

from pleo_scope.errors import (
    CredentialRejected,
    InvalidEvent,
    InvalidSecret,
    JobNotClaimed,
    JobNotFound,
)
from tests.e2e.conftest import Stack, load_event
from tooling.pleo_sim import Fault
from tooling.robustness import CrashAt, InjectedCrash

CRASH_SEED = "crash-points"  # 45 items: 5 pages, 34 in scope (4 SQS batches)


def assert_published_exactly_once(stack: Stack, job_id: str, expected: bytes) -> None:
    """scope.jsonl is the expected bytes; the queue holds one message per line, in order."""
    scope = stack.s3_object(f"export-jobs/{job_id}/scope.jsonl")
    assert scope == expected
    lines = [json.loads(line) for line in scope.splitlines()]
    messages = [m for m in stack.drain_queue() if m["jobId"] == job_id]
    assert [m["accountingEntryId"] for m in messages] == [i["accountingEntryId"] for i in lines]
    assert [m["position"] for m in messages] == list(range(len(lines)))
    assert [m["status"] for m in messages] == [i["status"] for i in lines]


@pytest.mark.parametrize(
    "event_file",
    [
        "eventbridge-export-job-claimed.json",
        "direct-invoke.json",
        "step-functions-loop-state.json",
    ],
)
def test_each_event_kind_publishes_the_contract(stack: Stack, event_file: str) -> None:
    job = stack.new_job(items=45)
    expected = stack.expected_scope(job)
    result = stack.invoke(load_event(event_file, job.id))

    item_count = expected.count(b"\n")
    assert result == {
        "jobId": job.id,
        "done": True,
        "itemsInScope": item_count,
        "pagesFetched": 5,
        "scope": {
            "bucket": stack.aws.physical["ScopeBucket"],
            "key": f"export-jobs/{job.id}/scope.jsonl",
            "manifestKey": f"export-jobs/{job.id}/scope.json",
        },
    }
    keys = stack.s3_keys(job.id)
    assert sum("/pages/" in key for key in keys) == 5
    manifest = json.loads(stack.s3_object(f"export-jobs/{job.id}/scope.json"))
    assert manifest["jobId"] == job.id
    assert manifest["itemCount"] == item_count
    assert manifest["sha256"] == hashlib.sha256(expected).hexdigest()
    assert manifest["pagesFetched"] == 5
    assert manifest["ordering"] == "accountingEntryId ASC"
    assert manifest["schemaVersion"] == 1
    assert sum(manifest["seenCountsByStatus"].values()) == 45
    assert sum(manifest["countsByStatus"].values()) == item_count
    assert manifest["startedAt"] <= manifest["completedAt"]
    assert_published_exactly_once(stack, job.id, expected)


def test_message_bodies_carry_the_contract_fields(stack: Stack) -> None:
    job = stack.new_job(items=12)
    stack.invoke({"jobId": job.id})
    message = stack.drain_queue()[0]
    assert set(message) == {"jobId", "accountingEntryId", "status", "position", "scopeSha256"}
    assert message["position"] == 0


def test_a_repeated_event_returns_the_stored_result_without_calling_pleo(stack: Stack) -> None:
    job = stack.new_job(items=30)
    event = load_event("eventbridge-export-job-claimed.json", job.id)
    first = stack.invoke(event)
    requests = stack.simulator.request_count(job.id)
    scope = stack.s3_object(first["scope"]["key"])
    assert stack.invoke(event) == first
    assert stack.simulator.request_count(job.id) == requests
    assert_published_exactly_once(stack, job.id, scope)


def test_a_trigger_after_the_idempotency_window_rewalks_without_enqueueing_twice(
    stack: Stack,
) -> None:
    job = stack.new_job(items=30)
    first = stack.invoke({"jobId": job.id})
    first_messages = stack.drain_queue()
    # The window has passed; meanwhile Pleo appended items and finished one.
    stack.forget_idempotency()
    finished = json.loads(stack.s3_object(first["scope"]["key"]).splitlines()[0])
    job.status_overrides[finished["accountingEntryId"]] = "successful"
    new_item = {**finished, "accountingEntryId": "00000000-0000-4000-8000-00000000000a"}
    new_item["status"] = "pending"
    job.items.append(new_item)

    second = stack.invoke({"jobId": job.id})
    assert second["done"]
    assert stack.s3_object(second["scope"]["key"]) == stack.expected_scope(job)
    # Only the appended item is new on the queue.
    assert [m["accountingEntryId"] for m in stack.drain_queue()] == [new_item["accountingEntryId"]]
    assert len(first_messages) == first["itemsInScope"]


@pytest.mark.parametrize(
    ("step", "occurrence"),
    [
        ("scope_written", 1),
        ("batch_sent", 2),
        ("ledger_written", 3),
        ("checkpoint_written", 3),
        # Inside the walk's pipeline: fetched but not archived; archived, not checkpointed.
        ("page_fetched", 4),
        ("page_written", 2),
        ("page_written", 5),
    ],
)
def test_a_crash_then_a_rerun_publishes_every_item_once(
    stack: Stack, step: str, occurrence: int
) -> None:
    crash_and_rerun(stack, step, occurrence)


@pytest.mark.parametrize(
    ("step", "occurrence"),
    [("scope_written", 1), ("ledger_written", 2), ("ledger_written", 4), ("checkpoint_written", 2)],
)
def test_a_rerun_past_the_sqs_dedup_window_relies_on_the_ledger(
    stack: Stack, step: str, occurrence: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rerun comes after SQS's 5-minute window: SQS no longer drops a duplicate. (Not
    # covered, and said so in the README: a crash between a batch's send and its ledger
    # write, rerun after the window, sends that batch again.)
    monkeypatch.setattr(moto_sqs_models, "DEDUPLICATION_TIME_IN_SECONDS", 0)
    crash_and_rerun(stack, step, occurrence)


def crash_and_rerun(stack: Stack, step: str, occurrence: int) -> None:
    # A fixed seed: the same statuses every time, so every occurrence aimed at exists.
    job = stack.new_job(items=45, seed=CRASH_SEED)
    event = {"jobId": job.id}
    stack.app.app.service.observer = CrashAt(step, occurrence)
    with pytest.raises(InjectedCrash, match=step):
        stack.invoke(event)
    result = stack.invoke(event)  # the failed attempt left no idempotency record
    assert result["done"]
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))


# --- bad input: a specific error, and nothing a later run would trust -------------------


def assert_nothing_trusted(stack: Stack, job_id: str) -> None:
    keys = stack.s3_keys(job_id)
    assert not [k for k in keys if k.endswith(("scope.jsonl", "scope.json"))]
    assert [m for m in stack.drain_queue() if m["jobId"] == job_id] == []


@pytest.mark.parametrize(
    ("event", "complaint"),
    [
        ({"jobId": "not-a-uuid"}, "jobId"),
        ({"jobid": "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"}, "jobId: Field required"),
        ({"detail-type": "Export Job Claimed", "detail": {}}, "detail.jobId"),
        ({"continuation": {"runId": 0}, "jobId": "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"}, "runId"),
        (["8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"], "JSON object"),
    ],
)
def test_a_malformed_event_is_invalid_event(stack: Stack, event: Any, complaint: str) -> None:
    with pytest.raises(InvalidEvent, match=complaint):
        stack.invoke(event)


def test_an_unknown_job_is_job_not_found(stack: Stack) -> None:
    job_id = "99999999-0000-4000-8000-000000000000"
    with pytest.raises(JobNotFound, match=job_id):
        stack.invoke({"jobId": job_id})
    assert stack.walk_record(job_id) is None
    assert_nothing_trusted(stack, job_id)


def test_a_job_that_is_not_claimed_is_job_not_claimed(stack: Stack) -> None:
    job = stack.new_job(items=10, status="pending")
    with pytest.raises(JobNotClaimed, match="'pending'"):
        stack.invoke({"jobId": job.id})
    assert stack.walk_record(job.id) is None
    assert_nothing_trusted(stack, job.id)


def test_a_secret_in_the_wrong_format_is_invalid_secret(stack: Stack) -> None:
    job = stack.new_job(items=10)
    secrets = stack.aws.client("secretsmanager")
    arn = stack.app.settings.secret_arn
    secrets.put_secret_value(SecretId=arn, SecretString='{"key": "sim-api-key"}')
    stack.app.app.secrets.clear_cache()
    try:
        with pytest.raises(InvalidSecret, match="exactly one of") as caught:
            stack.invoke({"jobId": job.id})
        assert "sim-api-key" not in str(caught.value)
        assert arn in str(caught.value)
    finally:
        secrets.put_secret_value(SecretId=arn, SecretString='{"apiKey": "sim-api-key"}')
        stack.app.app.secrets.clear_cache()
    assert_nothing_trusted(stack, job.id)


def test_a_401_mid_walk_is_credential_rejected_and_a_later_run_completes(stack: Stack) -> None:
    job = stack.new_job(items=45)
    stack.simulator.inject(job.id, Fault("revoke", frozenset({3})))
    with pytest.raises(CredentialRejected):
        stack.invoke({"jobId": job.id})
    assert_nothing_trusted(stack, job.id)
    stack.simulator.api_keys = {"sim-api-key": {"export-jobs:read"}}  # the key is fixed
    result = stack.invoke({"jobId": job.id})
    assert result["done"]
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))
