"""End-to-end fixtures: the Pleo simulator over HTTP and moto's server, both real servers on
loopback, with the resources created from template.yaml; the handler imported once."""

from __future__ import annotations

import importlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pleo_scope.ports import NoObserver
from tests.support import reference_scope
from tooling.local_stack import LocalLambdaContext, LocalStack, local_stack
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_JOB_ID = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"


def load_event(name: str, job_id: str) -> dict[str, Any]:
    """A sample event from events/, aimed at `job_id`."""
    text = (EVENTS / name).read_text(encoding="utf-8").replace(SAMPLE_JOB_ID, job_id)
    event: dict[str, Any] = json.loads(text)
    return event


@dataclass
class Stack:
    simulator: PleoSimulator
    aws: LocalStack
    app: ModuleType

    def invoke(self, event: Any, timeout_seconds: float = 900) -> dict[str, Any]:
        result: dict[str, Any] = self.app.lambda_handler(event, LocalLambdaContext(timeout_seconds))
        return result

    def new_job(self, items: int = 45, **options: Any) -> SimJob:
        return self.simulator.add_job(SimJob(str(uuid.uuid4()), generated_items=items, **options))

    def expected_scope(self, job: SimJob) -> bytes:
        return reference_scope([job.item_at(i) for i in range(job.item_count)])

    def s3_keys(self, job_id: str) -> list[str]:
        reply = self.aws.client("s3").list_objects_v2(
            Bucket=self.aws.physical["ScopeBucket"], Prefix=f"export-jobs/{job_id}/"
        )
        return [o["Key"] for o in reply.get("Contents", [])]

    def s3_object(self, key: str) -> bytes:
        body: bytes = (
            self.aws.client("s3")
            .get_object(Bucket=self.aws.physical["ScopeBucket"], Key=key)["Body"]
            .read()
        )
        return body

    def drain_queue(self) -> list[dict[str, Any]]:
        """Receive and delete every message, in delivery order (the FIFO group's order)."""
        sqs = self.aws.client("sqs")
        url = self.aws.physical["ScopeQueue"]
        bodies: list[dict[str, Any]] = []
        while True:
            reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = reply.get("Messages", [])
            if not messages:
                return bodies
            bodies += [json.loads(m["Body"]) for m in messages]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )

    def walk_record(self, job_id: str) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.app.app.checkpoints.load(job_id)
        return record


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    simulator = PleoSimulator()
    overrides = {
        # Small pages: several pages per job while the queue stays shallow (moto's SQS
        # slows down with depth).
        "PLEO_PAGE_SIZE": "10",
        # Short worst cases, so that a "Lambda" of a few seconds still walks.
        "PLEO_CONNECT_TIMEOUT_SECONDS": "0.5",
        "PLEO_READ_TIMEOUT_SECONDS": "1",
        "PLEO_MAX_RETRY_AFTER_SECONDS": "1",
        "SAFETY_MARGIN_SECONDS": "0.3",
    }
    # Continue as a new execution every 2 iterations; retry transient errors after 1 s.
    substitutions = {"MaxIterationsPerExecution": "2", "TransientRetryIntervalSeconds": "1"}
    with (
        serve(simulator) as url,
        local_stack(url, overrides=overrides, substitutions=substitutions) as aws,
    ):
        app = importlib.import_module("app")
        yield Stack(simulator, aws, app)


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> Iterator[None]:
    stack.drain_queue()
    yield
    stack.app.app.service.observer = NoObserver()
    stack.simulator.api_keys = {"sim-api-key": {"export-jobs:read"}}
