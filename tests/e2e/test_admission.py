"""Admission on the local stack: the handler takes the queue's SQS events (a trigger per
record, a bad body or a final error set aside in the admission DLQ with its reason, a
transient failure reported back), works one time slice and hands the rest of a large walk to
the loop; and the whole path, the rule on the bus -> the admission queue -> the poller that
stands in for Lambda's event source -> the function -> published."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from pleo_scope.admission import AdmissionSettings
from tooling.pleo_sim import Fault
from tooling.testkit.admission_poller import lambda_event
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.local_function import serve_function
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.loop import INVOCATION_SECONDS, slow_job
from tooling.testkit.samples import load_event


def queued(stack: Stack, body: str, message_id: str = "m-1") -> dict[str, Any]:
    now = str(int(time.time() * 1000))
    message = {
        "MessageId": message_id,
        "ReceiptHandle": "handle",
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "ApproximateFirstReceiveTimestamp": now,
        },
    }
    return lambda_event(message, stack.aws.physical["AdmissionQueue.Arn"])


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    sqs = stack.aws.client("sqs")
    url = stack.aws.physical["AdmissionDeadLetterQueue"]
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


@pytest.fixture
def sliced(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice of one second (the template's is three)."""
    url = stack.aws.physical["AdmissionDeadLetterQueue"]
    monkeypatch.setattr(stack.app, "admission", AdmissionSettings(1.0, url))


def test_a_queued_trigger_is_scoped_and_reported_done(stack: Stack) -> None:
    job = stack.new_job(items=45)
    event = load_event("eventbridge-export-job-claimed.json", job.id)
    assert stack.invoke(queued(stack, json.dumps(event))) == {"batchItemFailures": []}
    assert stack.scope_of(job.id) == stack.expected_scope(job)
    assert dead_letters(stack) == []


def test_a_bad_body_and_a_final_error_are_set_aside_with_their_reason(stack: Stack) -> None:
    assert stack.invoke(queued(stack, "{not json", "m-bad")) == {"batchItemFailures": []}
    pending = stack.new_job(items=5, status="pending")
    body = json.dumps({"jobId": pending.id})
    assert stack.invoke(queued(stack, body, "m-final")) == {"batchItemFailures": []}
    kept = {
        m["MessageAttributes"]["sourceMessageId"]["StringValue"]: m for m in dead_letters(stack)
    }
    assert set(kept) == {"m-bad", "m-final"}
    assert kept["m-bad"]["Body"] == "{not json"
    assert kept["m-bad"]["MessageAttributes"]["error"]["StringValue"] == "InvalidEvent"
    final = kept["m-final"]["MessageAttributes"]
    assert final["error"]["StringValue"] == "JobNotClaimed"
    assert "pending" in final["reason"]["StringValue"]
    assert kept["m-final"]["Body"] == body  # re-sendable as it was


def test_a_transient_failure_is_reported_for_the_queue_to_deliver_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slice long enough for every retry: a shorter one may defer the rest to the loop.
    url = stack.aws.physical["AdmissionDeadLetterQueue"]
    monkeypatch.setattr(stack.app, "admission", AdmissionSettings(60.0, url))
    job = stack.new_job(items=45)
    stack.simulator.inject(job.id, Fault("status", status=503, times=1000))
    answer = stack.invoke(queued(stack, json.dumps({"jobId": job.id}), "m-again"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-again"}]}
    assert dead_letters(stack) == []


def test_a_large_walk_hands_over_after_its_slice(stack: Stack, sliced: None) -> None:
    job = slow_job(stack, items=300)  # 30 pages of 150 ms: longer than the slice
    with route_lambda(stack.app.lambda_handler, INVOCATION_SECONDS) as loop:
        answer = stack.invoke(queued(stack, json.dumps({"jobId": job.id})))
        assert answer == {"batchItemFailures": []}
        assert stack.manifest_of(job.id) is None  # not finished in its slice: handed over
        walk = follow_walk(stack.aws, job.id)
    assert walk.final["status"] == "SUCCEEDED", walk.final
    assert loop  # the rest of the walk, in the loop:
    assert all("continuation" in i["event"] for i in loop)
    assert stack.scope_of(job.id) == stack.expected_scope(job)


def test_a_few_slow_pages_finish_in_their_admission_invocation(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = stack.aws.physical["AdmissionDeadLetterQueue"]
    monkeypatch.setattr(stack.app, "admission", AdmissionSettings(0.2, url))
    job = slow_job(stack, items=50)  # 5 pages of 150 ms: longer than the slice
    answer = stack.invoke(queued(stack, json.dumps({"jobId": job.id})))
    assert answer == {"batchItemFailures": []}
    assert stack.scope_of(job.id) == stack.expected_scope(job)  # published, in this one
    record = stack.walk_record(job.id)
    assert record is not None
    assert "executionArn" not in record  # never handed over


def test_the_rule_the_queue_and_the_poller_deliver_a_bus_event(stack: Stack) -> None:
    job = stack.new_job(items=45)
    sample = load_event("eventbridge-export-job-claimed.json", job.id)
    log = io.StringIO()
    with serve_function(
        stack.aws, stack.app.lambda_handler, INVOCATION_SECONDS, log, admission_concurrency=2
    ):
        stack.aws.client("events").put_events(
            Entries=[
                {
                    "Source": sample["source"],
                    "DetailType": sample["detail-type"],
                    "Detail": json.dumps(sample["detail"]),
                }
            ]
        )
        deadline = time.monotonic() + 30
        while stack.manifest_of(job.id) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert stack.scope_of(job.id) == stack.expected_scope(job)
    assert f"queue    {job.id}  admitted" in log.getvalue()
