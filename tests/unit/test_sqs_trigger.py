"""Triggers wrapped by the admission queue's event source: each record's body parsed as the
trigger shapes, a bad body kept as a typed error of its own record (not of the batch)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pleo_scope.contract import JobRef
from pleo_scope.errors import InvalidEvent
from pleo_scope.events import ScopeRequest
from pleo_scope.sqs_trigger import is_sqs_event, parse_body, parse_sqs_event
from tooling.testkit.samples import load_event, sample_job_id

JOB = sample_job_id()  # the sample events' job


def record(body: Any, message_id: str = "m-1", **attributes: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": body if not isinstance(body, dict) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", **attributes},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:admission",
        "awsRegion": "eu-west-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def test_the_rule_s_event_and_a_direct_trigger_parse_as_they_do_unwrapped() -> None:
    event = sqs_event(
        record(load_event("eventbridge-export-job-claimed.json", JOB)),
        record({"jobId": JOB.upper()}, "m-2"),
    )
    assert is_sqs_event(event)
    first, second = parse_sqs_event(event)
    assert (first.message_id, first.request, first.error) == (
        "m-1",
        ScopeRequest(JobRef(JOB)),
        None,
    )
    assert (second.message_id, second.request) == ("m-2", ScopeRequest(JobRef(JOB)))


def test_how_long_a_trigger_waited_and_its_receives_are_read_from_the_attributes() -> None:
    (trigger,) = parse_sqs_event(
        sqs_event(
            record(
                {"jobId": JOB},
                SentTimestamp="1700000000000",
                ApproximateFirstReceiveTimestamp="1700000004500",
                ApproximateReceiveCount="3",
            )
        )
    )
    assert trigger.queued_seconds == 4.5
    assert trigger.receive_count == 3


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("not json", r"body: Input should be JSON"),
        ({"jobId": "not-a-uuid"}, r"jobId: Input should be a UUID"),
        ({"jobId": JOB, "continuation": {"runId": 1, "handOver": 1}}, "a loop state comes from"),
        ({"detail-type": "Export Job Claimed", "detail": {}}, r"detail\.jobId: Field required"),
        ("[1, 2]", "event must be a JSON object"),
        (None, r"body: Input should be a string"),
    ],
)
def test_a_bad_body_is_an_invalid_event_of_its_own_record(body: Any, complaint: str) -> None:
    good, bad = parse_sqs_event(sqs_event(record({"jobId": JOB}), record(body, "m-bad")))
    assert good.request == ScopeRequest(JobRef(JOB))
    assert bad.message_id == "m-bad"
    assert bad.request is None
    assert isinstance(bad.error, InvalidEvent)
    with pytest.raises(InvalidEvent, match=complaint):
        raise bad.error


def test_the_error_names_fields_never_the_rejected_value() -> None:
    (bad,) = parse_sqs_event(sqs_event(record({"jobId": "secret-looking-value"})))
    assert "secret-looking-value" not in str(bad.error)


@pytest.mark.parametrize(
    "event",
    [
        {"jobId": JOB},
        {"Records": []},
        {"Records": [{"eventSource": "aws:sns"}]},
        {"Records": "x"},
        [],
    ],
)
def test_other_events_are_not_taken_for_the_queue_s(event: Any) -> None:
    assert not is_sqs_event(event)


def test_a_record_without_a_message_id_cannot_be_reported_and_fails_the_batch() -> None:
    broken = record({"jobId": JOB})
    del broken["messageId"]
    with pytest.raises(InvalidEvent, match=r"Records\[0\]\.messageId: Field required"):
        parse_sqs_event(sqs_event(broken))


def test_parse_body_is_parse_event_on_the_json() -> None:
    assert parse_body(json.dumps({"jobId": JOB})) == ScopeRequest(JobRef(JOB))
