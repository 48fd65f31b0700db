"""A downstream consumer of the work units, built on Powertools' batch utilities for SQS FIFO
(what docs/consumers.md shows), run against the local queue: units in order, one result
report per unit, failed items reported rather than failing the unit, a poisoned unit
reported as a partial batch failure and moved to the DLQ while the job's other units flow."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tooling.build.template import Template
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import LocalLambdaContext

MAX_RECEIVE_COUNT = Template.load().document["Mappings"]["ScopeQueue"]["Redrive"]["MaxReceiveCount"]


class PoisonedUnit(Exception):
    """The consumer cannot process this unit at all (not: one of its items failed)."""


@dataclass
class UnitConsumer:
    """What a Lambda function with an SQS event source (ReportBatchItemFailures) does with
    each batch; a failed message is made visible again at once, where SQS would wait for the
    visibility time-out."""

    stack: Stack
    process_item: Callable[[dict[str, Any]], str]
    """An item's result status: "successful" or "failed"."""
    poisoned: set[int] = field(default_factory=set)
    reports: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    """(unit, the body of the one PUT /v3/export-jobs/{jobId}/items for it), in order."""
    receives: dict[int, int] = field(default_factory=dict)
    batch_size: int = 1
    """The event source's BatchSize. 1 is what docs/consumers.md advises: a unit is a batch
    already, and the units behind a failing one in the same batch come back with it, their
    receive counts growing, so they would reach the DLQ with it."""

    def record_handler(self, record: SQSRecord) -> None:
        unit = json.loads(record.body)
        self.receives[unit["unit"]] = self.receives.get(unit["unit"], 0) + 1
        if unit["unit"] in self.poisoned:
            raise PoisonedUnit(f"unit {unit['unit']}")
        results = [
            {"accountingEntryId": item["accountingEntryId"], "status": self.process_item(item)}
            for item in unit["items"]
        ]
        assert len(results) <= 100  # one PUT carries at most 100 items
        self.reports.append((unit["unit"], results))

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor = SqsFifoPartialProcessor()
        response = process_partial_response(
            event=event, record_handler=self.record_handler, processor=processor, context=context
        )
        return dict(response)

    def drain(self) -> None:
        sqs = self.stack.aws.client("sqs")
        url = self.stack.aws.physical["ScopeQueue"]
        while True:
            reply = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=self.batch_size,
                MessageSystemAttributeNames=["All"],
            )
            messages = reply.get("Messages", [])
            if not messages:
                return
            event = {"Records": [self._record(m) for m in messages]}
            try:
                response = self.handler(event, LocalLambdaContext(30))
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            except BatchProcessingError:  # every record failed: the invocation fails
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS message as Lambda's event source mapping hands it over."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.stack.aws.physical["ScopeQueue.Arn"],
            "awsRegion": "eu-west-1",
        }


@pytest.fixture
def units_of(stack: Stack) -> Iterator[Callable[[int], None]]:
    app = stack.app.app
    with ExitStack() as sizes:

        def set_size(size: int) -> None:
            settings = replace(app.service.settings, unit_size=size)
            sizes.enter_context(app.injected(settings=settings))

        yield set_size


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    sqs = stack.aws.client("sqs")
    url = stack.aws.physical["ScopeDeadLetterQueue"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


@pytest.mark.parametrize("size", [100, 1])
def test_units_are_consumed_in_order_and_failed_items_are_reported_not_retried(
    stack: Stack, units_of: Callable[[int], None], size: int
) -> None:
    units_of(size)
    job = stack.new_job(items=45)
    result = stack.invoke({"jobId": job.id})
    lines = [json.loads(line) for line in stack.s3_object(result["scope"]["key"]).splitlines()]
    unlucky = lines[len(lines) // 2]["accountingEntryId"]  # say, the ERP rejects this one
    consumer = UnitConsumer(
        stack, lambda item: "failed" if item["accountingEntryId"] == unlucky else "successful"
    )
    consumer.drain()
    count = -(-len(lines) // size)
    assert [unit for unit, _ in consumer.reports] == list(range(count))
    reported = [r for _, results in consumer.reports for r in results]
    assert [r["accountingEntryId"] for r in reported] == [i["accountingEntryId"] for i in lines]
    assert [r["accountingEntryId"] for r in reported if r["status"] == "failed"] == [unlucky]
    assert set(consumer.receives.values()) == {1}  # the failed item failed no message
    assert stack.drain_queue() == []


def test_a_poisoned_unit_goes_to_the_dlq_and_the_job_s_other_units_flow(
    stack: Stack, units_of: Callable[[int], None]
) -> None:
    units_of(3)
    job = stack.new_job(items=45)
    result = stack.invoke({"jobId": job.id})
    count = -(-result["itemsInScope"] // 3)
    consumer = UnitConsumer(stack, lambda item: "successful", poisoned={2})
    for _ in range(MAX_RECEIVE_COUNT + 1):  # each pass: the unit fails and comes back
        consumer.drain()
    # Units 0 and 1 first; unit 2 held the group (and the units behind it) for its receives,
    # then went to the DLQ; the rest followed in order.
    assert [unit for unit, _ in consumer.reports] == [u for u in range(count) if u != 2]
    assert consumer.receives[2] == MAX_RECEIVE_COUNT
    [dead] = dead_letters(stack)
    assert (dead["jobId"], dead["unit"], len(dead["items"])) == (job.id, 2, 3)
    assert stack.drain_queue() == []


def test_with_batches_of_10_the_units_behind_a_poisoned_one_share_its_fate(
    stack: Stack, units_of: Callable[[int], None]
) -> None:
    # Why docs/consumers.md advises BatchSize 1: the circuit breaker returns the units behind
    # the failed one unprocessed, but SQS counts their receives all the same.
    units_of(1)
    job = stack.new_job(items=45)
    result = stack.invoke({"jobId": job.id})
    consumer = UnitConsumer(stack, lambda item: "successful", poisoned={2}, batch_size=10)
    for _ in range(MAX_RECEIVE_COUNT + 1):
        consumer.drain()
    dead = [unit["unit"] for unit in dead_letters(stack)]
    assert dead[0] == 2
    assert len(dead) > 1  # units 3.. went with it, never having failed
    reported = [unit for unit, _ in consumer.reports]
    assert sorted(reported + dead) == list(range(result["itemsInScope"]))
    assert stack.drain_queue() == []
