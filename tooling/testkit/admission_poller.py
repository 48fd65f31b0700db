"""Stands in for Lambda's SQS event source on the local stack (moto has no event source
polling one can rely on): `MaximumConcurrency` workers, each taking one message at a time
from the admission queue and invoking the function with the SQS event Lambda would build
(through moto's Lambda API, so that the invocation is routed and logged like any other).

As the event source does with ReportBatchItemFailures: a message the function names in
`batchItemFailures`, or every message of an invocation that failed, stays on the queue and
comes back after its visibility timeout (the redrive policy counts its receives); the others
are deleted. Tooling, not product: the template's event source is what runs in AWS.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tooling.build.template import Template
from tooling.testkit.local_stack import FUNCTION, REGION, LocalStack

EVENT = "Admitted"  # template.yaml: ScopeJobFunction's SQS event


def maximum_concurrency(template: Template | None = None) -> int:
    """The template's default of AdmissionMaximumConcurrency (what its ScalingConfig names)."""
    template = template or Template.load()
    scaling = template.properties(FUNCTION)["Events"][EVENT]["Properties"]["ScalingConfig"]
    name = scaling["MaximumConcurrency"]["Ref"]
    return int(template.document["Parameters"][name]["Default"])


def lambda_event(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One message as Lambda's SQS event source hands it to the function."""
    body = message["Body"]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        ]
    }


@dataclass
class PollerStats:
    invocations: int = 0
    deleted: int = 0
    returned: int = 0
    """Messages left for the queue to deliver again (a batch item failure, a failed call)."""
    busy_peak: int = 0
    """The most invocations running at once (never above the maximum concurrency)."""
    busy: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def poll_admission_queue(
    local: LocalStack, concurrency: int | None = None, *, wait_seconds: int = 1
) -> Iterator[PollerStats]:
    """Run the workers until the block ends (each finishes the invocation it is in)."""
    concurrency = concurrency or maximum_concurrency()
    queue_url = local.physical["AdmissionQueue"]
    queue_arn = local.physical["AdmissionQueue.Arn"]
    function_arn = local.physical[f"{FUNCTION}.Arn"]
    stats = PollerStats()
    stop = threading.Event()

    def work(sqs: Any, lambda_client: Any) -> None:
        while not stop.is_set():
            try:
                reply = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=wait_seconds,
                    AttributeNames=["All"],
                )
            except Exception:  # the server going away at the end of a run
                if stop.wait(0.2):
                    return
                continue
            for message in reply.get("Messages", []):
                _deliver(sqs, lambda_client, queue_url, queue_arn, function_arn, message, stats)

    # The clients first (they take a while to make): the workers poll from the start.
    clients = [(local.client("sqs"), local.client("lambda")) for _ in range(concurrency)]
    workers = [
        threading.Thread(target=work, args=pair, name=f"admission-{n}", daemon=True)
        for n, pair in enumerate(clients)
    ]
    for worker in workers:
        worker.start()
    try:
        yield stats
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=wait_seconds + 5)


def _deliver(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    queue_arn: str,
    function_arn: str,
    message: dict[str, Any],
    stats: PollerStats,
) -> None:
    with stats.lock:
        stats.invocations += 1
        stats.busy += 1
        stats.busy_peak = max(stats.busy_peak, stats.busy)
    try:
        reply = lambda_client.invoke(
            FunctionName=function_arn,
            InvocationType="RequestResponse",
            Payload=json.dumps(lambda_event(message, queue_arn)).encode(),
        )
        answer = json.loads(reply["Payload"].read() or b"{}")
        failed = "FunctionError" in reply or message["MessageId"] in {
            f.get("itemIdentifier") for f in (answer or {}).get("batchItemFailures", [])
        }
    except Exception:
        failed = True
    finally:
        with stats.lock:
            stats.busy -= 1
    if failed:
        with stats.lock:
            stats.returned += 1
        return
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    with stats.lock:
        stats.deleted += 1


def wait_until_drained(local: LocalStack, timeout_seconds: float) -> bool:
    """True once the admission queue holds no message, visible or in flight."""
    sqs = local.client("sqs")
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=local.physical["AdmissionQueue"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if not any(int(v) for v in attributes.values()):
            return True
        time.sleep(0.2)
    return False
