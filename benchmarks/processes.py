"""Servers in processes of their own for benchmarks: the measured process holds only the
code under test (for its time and its peak RSS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tooling.testkit.local_stack import LOCAL_ENV, LocalStack, free_port, local_stack


@dataclass
class BenchStack:
    aws: LocalStack
    consumed: list[int]
    """Items the consumer thread has received and deleted so far (one counter): a work
    unit's items, or one per message of the per-item contract."""
    pleo_url: str


@contextmanager
def bench_stack(job_id: str, items: int, overrides: dict[str, str]) -> Iterator[BenchStack]:
    """Simulator and moto in processes of their own, the template's resources, and a consumer
    thread draining the queue as downstream would (moto's SQS slows down with depth)."""
    from benchmarks.simulator_process import simulator_process

    with (
        simulator_process(f"{job_id}:{items}") as pleo_url,
        moto_process() as endpoint,
        local_stack(pleo_url, endpoint=endpoint, overrides=overrides) as aws,
    ):
        stop, consumed = threading.Event(), [0]
        # Made here, before any timing hook is installed: the consumer is not the function.
        sqs = aws.client("sqs")
        consumer = threading.Thread(
            target=_drain, args=(sqs, aws.physical["ScopeQueue"], stop, consumed), daemon=True
        )
        consumer.start()
        try:
            yield BenchStack(aws, consumed, pleo_url)
        finally:
            stop.set()
            consumer.join(timeout=600)


def _drain(sqs: Any, url: str, stop: threading.Event, consumed: list[int]) -> None:
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            if stop.is_set():
                return
            time.sleep(0.02)
            continue
        consumed[0] += sum(len(json.loads(m["Body"]).get("items", [m])) for m in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )


@contextmanager
def moto_process(lambda_runtime: str | None = None) -> Iterator[str]:
    """moto's server; with `lambda_runtime`, one whose Lambda forwards every Invoke to that
    runtime's URL (tooling/testkit/moto_lambda_server.py), the state machine's tasks too."""
    port = free_port()
    module, env = "tooling.testkit.moto_server", dict(os.environ)
    if lambda_runtime is not None:
        module = "tooling.testkit.moto_lambda_server"
        # MOTO_PORT: moto's ASL interpreter calls Lambda through the server on this port.
        env.update(LOCAL_ENV, MOTO_PORT=str(port), LOCAL_LAMBDA_RUNTIME_URL=lambda_runtime)
    args = [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{endpoint}/moto-api/")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
