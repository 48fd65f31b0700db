"""Large jobs through the loop, 100,000 vs 1,000,000 items. Prints figures.

The handler is driven through the state machine's loop protocol: each invocation gets a
time budget (`--budget`, seconds), and while it answers `done: false` its continuation is
passed back as the next input, as statemachine/scope_job.asl.json does. (moto runs the real
ASL only in the handler's own process, which would put moto's memory in the function's peak
RSS; the tests run the ASL itself.) Pleo simulator and moto each run in a process of their
own; a consumer thread drains the queue as downstream would.

Flat as the job grows must be: the largest loop-state payload and the largest DynamoDB
item. The function's peak RSS grows with the scope only (the scope is built in memory).

    python -m benchmarks.bench_large [--items 100000 1000000] [--budget 60]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.processes import bench_stack
from pleo_scope.aws.keys import CURSOR_SK, LEDGER_SK, WALK_SK, ledger_pk, walk_pk
from tooling.local_stack import (
    LocalLambdaContext,
    LocalStack,
    short_invocation_settings,
)

ROOT = Path(__file__).resolve().parent.parent
ITERATIONS_PER_EXECUTION = 500  # statemachine/: MaxIterationsPerExecution in template.yaml


def dynamodb_item_bytes(item: dict[str, dict[str, Any]]) -> int:
    """DynamoDB's size rule: attribute names plus values (strings and numbers as text)."""
    return sum(len(name) + len(str(next(iter(value.values())))) for name, value in item.items())


def largest_items(stack: LocalStack, job_id: str) -> dict[str, int]:
    """The size of each record kind the table holds for the job, read by key (a full scan of
    700,000+ ledger records on moto outlasts boto3's read time-out). Every record of a kind
    has the same attributes; only the cursor text and the numbers vary."""
    dynamodb = stack.client("dynamodb")
    table = stack.physical["ScopeTable"]
    walk = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": walk_pk(job_id)}, "sk": {"S": WALK_SK}}
    )
    bucket = stack.physical["ScopeBucket"]
    first_line = (
        stack.client("s3")
        .get_object(Bucket=bucket, Key=f"export-jobs/{job_id}/scope.jsonl", Range="bytes=0-4095")[
            "Body"
        ]
        .read()
        .split(b"\n")[0]
    )
    entry = json.loads(first_line)["accountingEntryId"]
    ledger = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": ledger_pk(job_id, entry)}, "sk": {"S": LEDGER_SK}}
    )
    cursors = dynamodb.scan(
        TableName=table,
        Limit=2000,
        ScanFilter={"sk": {"AttributeValueList": [{"S": CURSOR_SK}], "ComparisonOperator": "EQ"}},
    )["Items"]
    return {
        WALK_SK: dynamodb_item_bytes(walk["Item"]),
        LEDGER_SK: dynamodb_item_bytes(ledger["Item"]),
        CURSOR_SK: max((dynamodb_item_bytes(c) for c in cursors), default=0),
    }


def run(items: int, budget: float) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    overrides = {
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **short_invocation_settings(budget),
    }
    with bench_stack(job_id, items, overrides) as bench:
        stack = bench.aws
        app = importlib.import_module("app")
        started = time.perf_counter()
        event: dict[str, Any] = {"jobId": job_id}
        largest_payload, iterations = 0, 0
        while True:
            result = app.lambda_handler(event, LocalLambdaContext(budget))
            iterations += 1
            # The ASL's state: loop state plus the step's output (never items).
            state = {**event, "waitSeconds": 0, "loop": {"iteration": 499, "generation": 99}}
            state["step"] = {"done": result["done"], "output": result}
            largest_payload = max(largest_payload, len(json.dumps(state)))
            if result["done"]:
                break
            event = {"jobId": job_id, "continuation": result["continuation"]}
            if result.get("waitSeconds"):
                time.sleep(result["waitSeconds"])
            print(
                f"\r  {items:,}: iteration {iterations}, {result['phase']},"
                f" {result['pagesFetched']:,} pages, {result['itemsPublished']:,} published",
                end="",
                flush=True,
            )
        seconds = time.perf_counter() - started
        print()
        largest = largest_items(stack, job_id)
    return {
        "items": items,
        "seconds": seconds,
        "iterations": iterations,
        "executions": math.ceil(iterations / ITERATIONS_PER_EXECUTION),
        "in_scope": result["itemsInScope"],
        "consumed": bench.consumed[0],
        "largest_state": largest_payload,
        "largest_items": largest,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(items: int, budget: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_large", "--one", str(items)]
    child = subprocess.run(
        [*command, "--budget", str(budget)], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"{items:,} items: the run failed\n{child.stderr[-3000:]}")
    line = next(x for x in child.stdout.splitlines() if x.startswith("RESULT "))
    row: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per invocation")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "layers" / "scope_core"), str(ROOT / "functions" / "scope_job")]
    logging.getLogger("pleo_scope").setLevel(logging.WARNING)
    if args.one:  # one job size in this fresh process: a clean peak RSS
        print("RESULT " + json.dumps(run(args.one, args.budget)))
        return
    rows = [in_child(items, args.budget) for items in sorted(args.items)]
    print(f"\nloop of {args.budget:.0f}-second invocations, each job size in a fresh process:")
    print("items      time     iter  exec  in scope  queued    state B  walk B  cursor B", end="")
    print("  ledger B  peak RSS")
    for r in rows:
        sizes = r["largest_items"]
        print(
            f"{r['items']:<9,} {r['seconds']:7.0f} s {r['iterations']:5} {r['executions']:5}"
            f" {r['in_scope']:9,} {r['consumed']:9,} {r['largest_state']:8}"
            f" {sizes[WALK_SK]:7} {sizes[CURSOR_SK]:9} {sizes[LEDGER_SK]:9}"
            f" {r['peak_rss_mib']:6.0f} MiB"
        )


if __name__ == "__main__":
    main()
