"""The local stack's moto fix for SQS sends (tooling.testkit.moto_speed): same answers, no
queue scans on the send path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sqs.models import Queue

from tooling.testkit import moto_speed


@pytest.fixture
def sqs() -> Iterator[Any]:
    moto_speed.apply()
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


def fifo(sqs: Any, name: str, **attributes: str) -> str:
    url: str = sqs.create_queue(
        QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true", **attributes}
    )["QueueUrl"]
    return url


def count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_fifo_sends_deduplicate_and_validate_as_moto_does(sqs: Any) -> None:
    url = fifo(sqs, "units")
    for start in (0, 10, 5):  # the last batch repeats five ids of each earlier one
        entries = [
            {"Id": str(n), "MessageBody": f"unit {n}", "MessageGroupId": "job",
             "MessageDeduplicationId": f"unit-{n}"}
            for n in range(start, start + 10)
        ]  # fmt: skip
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert count(sqs, url) == 20
    with pytest.raises(ClientError, match="ContentBasedDeduplication"):
        sqs.send_message(QueueUrl=url, MessageBody="no id", MessageGroupId="job")
    with pytest.raises(ClientError, match="MessageGroupId"):
        sqs.send_message(QueueUrl=url, MessageBody="no group", MessageDeduplicationId="x")


def test_content_based_deduplication_still_applies(sqs: Any) -> None:
    url = fifo(sqs, "by-content", ContentBasedDeduplication="true")
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="job")
    sqs.send_message(QueueUrl=url, MessageBody="other", MessageGroupId="job")
    assert count(sqs, url) == 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ContentBasedDeduplication"] == "true"


def test_sends_do_not_count_the_queue_but_get_queue_attributes_does(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fifo(sqs, "deep")
    scans: list[str] = []
    counted = Queue.approximate_number_of_messages_delayed

    def delayed(queue: Queue) -> int:
        scans.append(queue.name)
        return counted.fget(queue)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(Queue, "approximate_number_of_messages_delayed", property(delayed))
    entries = [
        {"Id": str(n), "MessageBody": "u", "MessageGroupId": "g", "MessageDeduplicationId": str(n)}
        for n in range(10)
    ]
    sqs.send_message_batch(QueueUrl=url, Entries=entries)
    sqs.send_message(QueueUrl=url, MessageBody="u", MessageGroupId="g", MessageDeduplicationId="x")
    assert scans == []
    assert count(sqs, url) == 11
    assert scans == ["deep.fifo"]
