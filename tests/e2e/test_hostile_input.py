"""Hostile input and misconfiguration, end to end (issue 11): values that real APIs, secret
stores and operators produce end in the scope, or in a specific typed error with nothing
partial written."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pleo_scope.errors import ConfigurationError
from tooling.pleo_sim import SimJob
from tooling.pleo_sim.jobs import make_item
from tooling.reports.robustness import CrashAt, InjectedCrash
from tooling.testkit.harness import Stack
from tooling.testkit.samples import load_event


def drain_with_groups(stack: Stack) -> tuple[set[str], list[dict[str, Any]]]:
    """Every message on the queue (deleted), with the FIFO message groups they were in."""
    sqs = stack.aws.client("sqs")
    url = stack.aws.physical["ScopeQueue"]
    groups: set[str] = set()
    bodies: list[dict[str, Any]] = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
        )
        messages = reply.get("Messages", [])
        if not messages:
            return groups, bodies
        groups |= {m["Attributes"]["MessageGroupId"] for m in messages}
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )


def enqueued_ids(bodies: list[dict[str, Any]]) -> list[str]:
    """The accountingEntryIds the messages carry, in queue order (one item or a unit each)."""
    ids: list[str] = []
    for body in bodies:
        if "items" in body:
            ids += [item["accountingEntryId"] for item in body["items"]]
        else:
            ids.append(body["accountingEntryId"])
    return ids


def scope_ids(scope: bytes) -> list[str]:
    return [json.loads(line)["accountingEntryId"] for line in scope.splitlines()]


def assert_nothing_written(stack: Stack, *job_ids: str) -> None:
    for job_id in job_ids:
        assert stack.walk_record(job_id) is None
        assert stack.s3_keys(job_id) == []
    assert drain_with_groups(stack) == (set(), [])


# --- job ids in any letter case -------------------------------------------------------------


def test_a_job_triggered_in_upper_case_within_the_window_is_the_same_job(stack: Stack) -> None:
    job = stack.new_job(items=45)
    upper = job.id.upper()
    first = stack.invoke(load_event("eventbridge-export-job-claimed.json", upper))
    requests = stack.simulator.request_count(job.id)
    # Everything is named by the lower-case id: result, S3 keys, the walk record, messages.
    assert first["jobId"] == job.id
    assert first["scope"]["key"] == f"export-jobs/{job.id}/runs/000001/scope.jsonl"
    assert stack.walk_record(job.id) is not None
    assert stack.walk_record(upper) is None
    assert stack.s3_keys(upper) == []
    manifest = json.loads(stack.s3_object(first["scope"]["manifestKey"]))
    assert manifest["jobId"] == job.id
    # The same job again, in lower and in mixed case, inside the idempotency window.
    mixed = job.id[:18].upper() + job.id[18:]
    assert stack.invoke(load_event("eventbridge-export-job-claimed.json", job.id)) == first
    assert stack.invoke(load_event("direct-invoke.json", mixed)) == first
    assert stack.simulator.request_count(job.id) == requests  # Pleo was not asked again
    groups, bodies = drain_with_groups(stack)
    assert groups == {job.id}  # one FIFO group
    assert {body["jobId"] for body in bodies} == {job.id}
    scope = stack.s3_object(first["scope"]["key"])
    assert scope == stack.expected_scope(job)
    assert enqueued_ids(bodies) == scope_ids(scope)  # nothing enqueued twice


# --- any JSON text Pleo sends -----------------------------------------------------------------


def hostile_job(stack: Stack) -> SimJob:
    """Items whose text is valid JSON but hostile: lone surrogates (in an id too), control
    characters, line separators, non-ASCII; the simulator sends them as \\u escapes."""
    job = stack.new_job(items=20, seed="hostile-text")
    texts = ["Receipt \ud83d", "\udc00 low", "tab\tnul\x00 bell\x07", "line\u2028sep\u2029",
             "Kø 😀", '"quoted" \\ back']  # fmt: skip
    for n, text in enumerate(texts):
        entry_id = f"00000000-0000-4000-8000-{n:012d}"
        job.items.append(make_item(job.id, entry_id, "pending", failureReason=text, note={text: n}))
    return job


def test_hostile_text_is_carried_byte_identical_across_retries_and_the_rebuild(
    stack: Stack,
) -> None:
    # One run that sees every page builds the scope as pages arrive.
    clean = hostile_job(stack)
    first = stack.invoke({"jobId": clean.id})
    expected = stack.expected_scope(clean)
    assert stack.s3_object(first["scope"]["key"]) == expected
    assert b"Receipt \\ud83d" in expected
    assert b"\\udc00 low" in expected
    _, bodies = drain_with_groups(stack)
    assert enqueued_ids(bodies) == scope_ids(expected)
    # A crash after page 2's checkpoint: the retry rebuilds the scope from the archived pages
    # (raw page -> json.loads -> serialise), to the same bytes.
    crashed = hostile_job(stack)
    with (
        stack.app.app.injected(observer=CrashAt("checkpoint_written", 2)),
        pytest.raises(InjectedCrash),
    ):
        stack.invoke({"jobId": crashed.id})
    record = stack.walk_record(crashed.id)
    assert record is not None
    assert int(record["pagesFetched"]) >= 1  # so the retry walks on and rebuilds
    retried = stack.invoke({"jobId": crashed.id})
    assert retried["done"]
    rebuilt = stack.s3_object(retried["scope"]["key"])
    assert rebuilt == expected.replace(clean.id.encode(), crashed.id.encode())
    _, bodies = drain_with_groups(stack)
    assert enqueued_ids(bodies) == scope_ids(rebuilt)


def test_an_accounting_entry_id_of_any_length_or_text_is_published_once(stack: Stack) -> None:
    job = stack.new_job(items=30)
    odd_ids = [f"{n}" + "x" * 3000 for n in range(3)] + ["\ud83d lone", "ctl\x00\x1f"]
    job.items += [make_item(job.id, entry_id, "pending") for entry_id in odd_ids]
    result = stack.invoke({"jobId": job.id})
    assert result["done"]
    scope = stack.s3_object(result["scope"]["key"])
    assert scope == stack.expected_scope(job)
    _, bodies = drain_with_groups(stack)
    assert enqueued_ids(bodies) == scope_ids(scope)
    # After the idempotency window, a re-trigger walks again and enqueues nothing twice.
    stack.forget_idempotency()
    assert stack.invoke({"jobId": job.id})["done"]
    assert drain_with_groups(stack) == (set(), [])


# --- settings that leave no time to work ----------------------------------------------------


def test_a_safety_margin_at_or_above_the_time_out_stops_the_function_at_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = stack.new_job(items=10)
    # 20000 meant as milliseconds; the function's time-out is 900 s.
    monkeypatch.setattr(
        stack.app, "settings", replace(stack.app.settings, safety_margin_seconds=20000.0)
    )
    for event in (
        load_event("eventbridge-export-job-claimed.json", job.id),
        load_event("step-functions-loop-state.json", job.id),
    ):
        with pytest.raises(ConfigurationError, match="SAFETY_MARGIN_SECONDS=20000 leaves no"):
            stack.invoke(event, timeout_seconds=900)
    assert stack.simulator.request_count(job.id) == 0
    assert_nothing_written(stack, job.id)
    monkeypatch.undo()
    assert stack.invoke({"jobId": job.id})["done"]  # the idempotency layer kept nothing
    drain_with_groups(stack)
