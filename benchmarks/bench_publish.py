"""The publish step of one job, units of 100 vs units of 1, on the local stack. Prints figures.

Each unit size runs in a fresh process: the Pleo simulator and moto's server in processes of
their own, the real handler (one invocation, 900 s) with SCOPE_UNIT_SIZE set, and a consumer
thread draining the queue as downstream would. AWS calls are counted with a botocore event
hook on the function's clients (`benchmarks.aws_calls`); the publish is the part of the
invocation from the moment scope.jsonl is written until the handler returns (the checkpoints
around it included). Messages are the entries of the SendMessageBatch calls.

    python -m benchmarks.bench_publish [--items 20000]

The last line is the figure the issue asks for, for units of 100:
    publish calls per 1000 in-scope items: sqs=X.XX dynamodb=Y.YY
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.session

from benchmarks.aws_calls import AwsCalls
from benchmarks.processes import bench_stack
from tooling.testkit.local_stack import LocalLambdaContext

ROOT = Path(__file__).resolve().parent.parent
UNIT_SIZES = (100, 1)


class PublishWindow:
    """A StepObserver: notes the time and the calls so far when the scope is written."""

    def __init__(self, aws: AwsCalls) -> None:
        self.aws = aws
        self.started: float | None = None
        self.calls_before: Counter[str] = Counter()

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == "scope_written":
            self.started = time.perf_counter()
            self.calls_before = self.aws.by_service()


def count_messages() -> list[int]:
    """Entries of every SendMessageBatch made by a client created from now on."""
    sent = [0]
    original = botocore.session.Session.create_client

    def count(params: dict[str, Any], **kwargs: Any) -> None:
        sent[0] += len(params.get("Entries", []))

    def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(session, *args, **kwargs)
        client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", count)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]
    return sent


def run(items: int, unit_size: int) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    overrides = {
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PLEO_MAX_REQUESTS_PER_MINUTE": "1000000",  # the walk is not what is measured here
        "SCOPE_UNIT_SIZE": str(unit_size),
    }
    with bench_stack(job_id, items, overrides) as bench:
        aws = AwsCalls()
        aws.install(existing=False)  # the function's clients only (made on first use)
        messages = count_messages()
        app = importlib.import_module("app")
        assert app.app.settings.unit_size == unit_size
        window = PublishWindow(aws)
        with app.app.injected(observer=window):
            result = app.lambda_handler({"jobId": job_id}, LocalLambdaContext(900))
        ended = time.perf_counter()
        assert result["done"], result
        assert window.started is not None
        calls = aws.by_service()
        calls.subtract(window.calls_before)
        deadline = time.monotonic() + 600
        while bench.consumed[0] < result["itemsInScope"] and time.monotonic() < deadline:
            time.sleep(0.1)
    return {
        "unit_size": unit_size,
        "in_scope": result["itemsInScope"],
        "messages": messages[0],
        "consumed": bench.consumed[0],
        "seconds": ended - window.started,
        "calls": {service: count for service, count in calls.items() if count},
    }


def in_child(items: int, unit_size: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_publish", "--items", str(items)]
    command += ["--one", str(unit_size)]
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    if child.returncode != 0:
        raise SystemExit(f"units of {unit_size}: the run failed (its stderr is above)")
    line = next(x for x in child.stdout.splitlines() if x.startswith("RESULT "))
    row: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return row


def table(items: int, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"publish of one {items:,}-item job, real handler on the local stack"
        " (from scope.jsonl written to the handler's return)",
        f"{'':<28}" + "".join(f"{'units of ' + str(r['unit_size']):>16}" for r in rows),
    ]

    def line(name: str, cell: Any) -> None:
        lines.append(f"{name:<28}" + "".join(f"{cell(r):>16}" for r in rows))

    line("in-scope items", lambda r: f"{r['in_scope']:,}")
    line("messages sent", lambda r: f"{r['messages']:,}")
    line("items consumed", lambda r: f"{r['consumed']:,}")
    line("seconds", lambda r: f"{r['seconds']:,.2f}")
    for service in sorted({s for r in rows for s in r["calls"]}):
        line(f"AWS calls: {service}", lambda r, s=service: f"{r['calls'].get(s, 0):,}")
    for service in ("sqs", "dynamodb"):
        line(
            f"{service} calls / 1000 items",
            lambda r, s=service: f"{1000 * r['calls'].get(s, 0) / max(r['in_scope'], 1):.2f}",
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=20_000, help="items in the job")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "layers" / "scope_core"), str(ROOT / "functions" / "scope_job")]
    logging.getLogger("pleo_scope").setLevel(logging.WARNING)
    if args.one:  # one unit size in this fresh process (the handler reads its settings once)
        print("RESULT " + json.dumps(run(args.items, args.one)))
        return
    rows = [in_child(args.items, size) for size in UNIT_SIZES]
    print(table(args.items, rows))
    units_of_100 = rows[0]
    per_1000 = {
        s: 1000 * units_of_100["calls"].get(s, 0) / max(units_of_100["in_scope"], 1)
        for s in ("sqs", "dynamodb")
    }
    print(
        f"publish calls per 1000 in-scope items: sqs={per_1000['sqs']:.2f}"
        f" dynamodb={per_1000['dynamodb']:.2f}"
    )


if __name__ == "__main__":
    main()
