"""End-to-end benchmark of one ScopeJob invocation on the local stack. Prints figures.

A 10,000-item job (100 pages of 100): Pleo simulator and moto's server each in a process of
their own, the handler in this one, a consumer thread draining the queue as downstream
would (moto's SQS slows down with queue depth). Time is split by where it was spent:
Pleo (HTTP), S3, SQS, DynamoDB (botocore's before/after-call hooks) and the rest (this
code, scope building, serialisation). The cold start (the built artifact's import) is
`benchmarks.bench_cold_start`.

    python -m benchmarks.bench_e2e [--items 10000]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from benchmarks.processes import bench_stack
from pleo_scope.pleo_client import PleoClient
from tooling.testkit.local_stack import LocalLambdaContext

ROOT = Path(__file__).resolve().parent.parent


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._started: dict[tuple[int, str], float] = {}

    def start(self, label: str) -> None:
        self._started[(threading.get_ident(), label)] = time.perf_counter()

    def stop(self, label: str) -> None:
        started = self._started.pop((threading.get_ident(), label), None)
        if started is not None:
            self.seconds[label] += time.perf_counter() - started
            self.calls[label] += 1


@contextmanager
def timed_clients(timers: Timers) -> Iterator[None]:
    """Every boto3 client made meanwhile reports its calls; so do the Pleo client's."""
    original_client = boto3.session.Session.client
    original_call = PleoClient._call

    def client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original_client(self, *args, **kwargs)
        label = made.meta.service_model.service_name
        made.meta.events.register("before-call", lambda **_: timers.start(label))
        made.meta.events.register("after-call", lambda **_: timers.stop(label))
        return made

    def call(self: PleoClient, *args: Any, **kwargs: Any) -> Any:
        timers.start("pleo")
        try:
            return original_call(self, *args, **kwargs)
        finally:
            timers.stop("pleo")

    boto3.session.Session.client = client  # type: ignore[method-assign]
    PleoClient._call = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        boto3.session.Session.client = original_client  # type: ignore[method-assign]
        PleoClient._call = original_call  # type: ignore[method-assign]


def bench_invocation(items: int) -> None:
    job_id = str(uuid.uuid4())
    logging.getLogger("pleo_scope").setLevel(logging.WARNING)
    overrides = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with bench_stack(job_id, items, overrides) as stack:
        timers = Timers()
        with timed_clients(timers):
            app = importlib.import_module("app")
            started = time.perf_counter()
            result = app.lambda_handler({"jobId": job_id}, LocalLambdaContext(900))
            total = time.perf_counter() - started
    counted = stack.consumed
    assert result["done"], result
    spent = dict(timers.seconds)
    rest = total - sum(spent.values())
    print(
        f"one invocation, {items:,} items, {result['pagesFetched']} pages,"
        f" {result['itemsInScope']:,} in scope, {counted[0]:,} messages consumed"
    )
    print(f"  total            {total:7.2f} s")
    for label in ("pleo", "s3", "sqs", "dynamodb"):
        print(
            f"  {label:<16} {spent.get(label, 0.0):7.2f} s  ({timers.calls.get(label, 0):,} calls)"
        )
    print(f"  rest (this code) {rest:7.2f} s  ({rest / total:.1%} of the total)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "layers" / "scope_core"), str(ROOT / "functions" / "scope_job")]
    bench_invocation(args.items)


if __name__ == "__main__":
    main()
