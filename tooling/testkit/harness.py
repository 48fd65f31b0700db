"""The whole product on the embedded defaults, for tests and the robustness table: the Pleo
simulator over HTTP, moto's server with the template's resources, the handler imported."""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pleo_scope.aws.keys import WALK_SK, pointer_key, walk_pk
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.testkit.local_stack import LocalLambdaContext, LocalStack, local_stack

# Small pages: several pages per job while the queue stays shallow (moto's SQS slows down
# with depth); short worst cases, so that a "Lambda" of a few seconds still walks.
OVERRIDES = {
    "PLEO_PAGE_SIZE": "10",
    "PLEO_CONNECT_TIMEOUT_SECONDS": "0.5",
    "PLEO_READ_TIMEOUT_SECONDS": "1",
    "PLEO_MAX_RETRY_AFTER_SECONDS": "1",
    "SAFETY_MARGIN_SECONDS": "0.3",
    # The simulator has no rate limit unless a test gives it one; pacing at the template's
    # 500/min would add 0.12 s to each of the suite's thousands of requests.
    "PLEO_MAX_REQUESTS_PER_MINUTE": "60000",
}
# Continue as a new execution every 2 iterations; retry transient errors after 1 s, then up
# to 2 s, for about a minute: longer than any lease of a few-second "Lambda".
SUBSTITUTIONS = {
    "MaxIterationsPerExecution": "2",
    "TransientRetryIntervalSeconds": "1",
    "TransientRetryMaxDelaySeconds": "2",
    "TransientRetryMaxAttempts": "60",
}


def reference_scope(observations: list[dict[str, Any]]) -> bytes:
    """pleo-api.md's rule, as plainly as it can be written."""
    latest: dict[str, dict[str, Any]] = {}
    for item in observations:
        latest[item["accountingEntryId"]] = item
    kept = [item for item in latest.values() if item["status"] in ("pending", "in_progress")]
    kept.sort(key=lambda item: item["accountingEntryId"])
    lines = [
        json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for item in kept
    ]
    # A lone surrogate (valid JSON, not UTF-8) is written as its \uXXXX escape (DESIGN.md).
    return "".join(lines).encode("utf-8", "backslashreplace")


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
        s3 = self.aws.client("s3")
        body: bytes = s3.get_object(Bucket=self.aws.physical["ScopeBucket"], Key=key)["Body"].read()
        return body

    def manifest_of(self, job_id: str) -> dict[str, Any] | None:
        """The job's pointer: the manifest of its latest published run (None before one)."""
        s3 = self.aws.client("s3")
        try:
            body = s3.get_object(Bucket=self.aws.physical["ScopeBucket"], Key=pointer_key(job_id))
        except s3.exceptions.NoSuchKey:
            return None
        manifest: dict[str, Any] = json.loads(body["Body"].read())
        return manifest

    def scope_of(self, job_id: str) -> bytes | None:
        """The scope.jsonl the job's pointer names (its latest published run)."""
        manifest = self.manifest_of(job_id)
        return None if manifest is None else self.s3_object(manifest["scopeKey"])

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

    def leave_lease_behind(self, job_id: str, hand_over: int | None, seconds: float) -> None:
        """What an invocation killed by a time-out or out of memory leaves: its lease, held
        for the rest of its time, by the loop of `hand_over` (None: by a trigger)."""
        values: dict[str, Any] = {
            ":dead": {"S": "killed-invocation"},
            ":until": {"N": str(int(time.time() + seconds) + 1)},
        }
        update = "SET leaseOwner = :dead, leaseExpiresAt = :until"
        if hand_over is None:
            update += " REMOVE leaseHandOver"
        else:
            update += ", leaseHandOver = :h"
            values[":h"] = {"N": str(hand_over)}
        self.aws.client("dynamodb").update_item(
            TableName=self.aws.physical["ScopeTable"],
            Key={"pk": {"S": walk_pk(job_id)}, "sk": {"S": WALK_SK}},
            UpdateExpression=update,
            ExpressionAttributeValues=values,
        )

    def forget_idempotency(self) -> None:
        """What the expiry of the idempotency records does: remove them."""
        table = self.app.settings.idempotency_table
        dynamodb = self.app.app.dynamodb
        for item in dynamodb.scan(TableName=table)["Items"]:
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


@contextmanager
def open_stack(*, quiet: bool = False) -> Iterator[Stack]:
    """`quiet` silences the function's INFO logs and metrics (tools print tables)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    simulator = PleoSimulator()
    overrides = {**OVERRIDES, **(QUIET if quiet else {})}
    with (
        serve(simulator) as url,
        local_stack(url, overrides=overrides, substitutions=SUBSTITUTIONS) as aws,
    ):
        yield Stack(simulator, aws, importlib.import_module("app"))
