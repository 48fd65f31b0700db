"""Large jobs through the loop, 100,000 vs 1,000,000 items. Prints figures.

The handler is driven through the state machine's loop protocol: each invocation gets a
time budget (`--budget`, seconds), and while it answers `done: false` its continuation is
passed back as the next input, as statemachine/scope_job.asl.json does. The simulator on
loopback has no rate limit, and the walk is paced at `--pace` requests per minute (far above
its page rate by default; at Pleo's 500 a 10,000-page walk alone takes 20 minutes).
(moto runs the real ASL only in the handler's own process, which would put moto's memory
in the function's peak RSS; the tests run the ASL itself.) Pleo simulator and moto each run
in a process of their own; a consumer thread drains the queue as downstream would.

Flat as the job grows must be: the largest loop-state payload and the largest DynamoDB
item. The function's peak RSS grows with the scope only (the scope is built in memory).

    python -m benchmarks.bench_large [--items 100000 1000000] [--budget 60] [--write-docs]
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

import httpx

from benchmarks.aws_calls import AwsCalls
from benchmarks.processes import bench_stack
from pleo_scope.aws.keys import CURSOR_SK, WALK_SK, ledger_pk, walk_pk
from pleo_scope.contract import MAX_EXECUTION_NAME, Continuation
from tooling.reports.docs_writer import DocSection
from tooling.testkit.local_stack import (
    LocalLambdaContext,
    LocalStack,
    short_invocation_settings,
)

ROOT = Path(__file__).resolve().parent.parent
LEDGER_SK = "LEDGER"
ITERATIONS_PER_EXECUTION = 500  # statemachine/: MaxIterationsPerExecution in template.yaml
SECTION = DocSection("performance.md", "bench-large")


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
    # One record per unit, all of a size (the last unit's may be smaller).
    ledger = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": ledger_pk(job_id)}},
        Limit=1,
    )
    cursors = dynamodb.scan(
        TableName=table,
        Limit=2000,
        ScanFilter={"sk": {"AttributeValueList": [{"S": CURSOR_SK}], "ComparisonOperator": "EQ"}},
    )["Items"]
    return {
        WALK_SK: dynamodb_item_bytes(walk["Item"]),
        LEDGER_SK: dynamodb_item_bytes(ledger["Items"][0]),
        CURSOR_SK: max((dynamodb_item_bytes(c) for c in cursors), default=0),
    }


def run(items: int, budget: float, pace: int) -> dict[str, Any]:
    job_id = str(uuid.uuid4())
    overrides = {
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PLEO_MAX_REQUESTS_PER_MINUTE": str(pace),
        **short_invocation_settings(budget),
    }
    with bench_stack(job_id, items, overrides) as bench:
        stack = bench.aws
        aws = AwsCalls()
        aws.install(existing=False)  # the function's clients only (made on first use)
        app = importlib.import_module("app")
        started = time.perf_counter()
        event: dict[str, Any] = {"jobId": job_id}
        largest_payload, iterations, longest = 0, 0, 0.0
        while True:
            invoked = time.perf_counter()
            result = app.lambda_handler(event, LocalLambdaContext(budget))
            longest = max(longest, time.perf_counter() - invoked)
            iterations += 1
            # The ASL's state: loop state plus the step's output (never items).
            loop = {"iteration": 499, "generation": 99, "namePrefix": "x" * MAX_EXECUTION_NAME}
            state = {**event, "waitSeconds": 0, "loop": loop}
            state["step"] = {"done": result["done"], "output": result}
            largest_payload = max(largest_payload, len(json.dumps(state)))
            if result["done"]:
                break
            event = Continuation.read(result).payload()
            if result.get("waitSeconds"):
                time.sleep(result["waitSeconds"])
            print(
                f"\r  {items:,}: iteration {iterations}, {result['phase']},"
                f" {result['pagesFetched']:,} pages",
                end="",
                flush=True,
                file=sys.stderr,
            )
        seconds = time.perf_counter() - started
        print(file=sys.stderr)
        calls = dict(aws.by_service())
        reply = httpx.get(f"{bench.pleo_url}/_sim/jobs/{job_id}/requests", timeout=10)
        calls["pleo"] = reply.json()["count"]
        largest = largest_items(stack, job_id)
    return {
        "items": items,
        "seconds": seconds,
        "iterations": iterations,
        "executions": math.ceil(iterations / ITERATIONS_PER_EXECUTION),
        "longest_invocation": longest,
        "pages": result["pagesFetched"],
        "in_scope": result["itemsInScope"],
        "consumed": bench.consumed[0],
        "largest_state": largest_payload,
        "largest_items": largest,
        "calls": calls,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def in_child(items: int, budget: float, pace: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_large", "--one", str(items)]
    command += ["--budget", str(budget), "--pace", str(pace)]
    child = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    if child.returncode != 0:
        raise SystemExit(f"{items:,} items: the run failed (its stderr is above)")
    line = next(x for x in child.stdout.splitlines() if x.startswith("RESULT "))
    row: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return row


def table(rows: list[dict[str, Any]], budget: float, pace: int) -> str:
    lines = [
        f"Produced by `python -m benchmarks.bench_large --items"
        f" {' '.join(str(r['items']) for r in rows)} --budget {budget:g}` (each job size in a"
        f" fresh process; {budget:g}-second invocations through the loop protocol; paced at"
        f" {pace:,} requests/min); do not edit by hand.",
        "",
        "| | " + " | ".join(f"{r['items']:,} items" for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]

    def line(name: str, cell: Any) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in rows) + " |")

    line("wall time", lambda r: f"{r['seconds']:,.0f} s")
    line("iterations (invocations)", lambda r: f"{r['iterations']:,}")
    line("executions (500 iterations each)", lambda r: f"{r['executions']:,}")
    line("longest invocation", lambda r: f"{r['longest_invocation']:.1f} s")
    line("pages walked", lambda r: f"{r['pages']:,}")
    line("items in scope", lambda r: f"{r['in_scope']:,}")
    line("items consumed from the queue", lambda r: f"{r['consumed']:,}")
    line("largest loop state", lambda r: f"{r['largest_state']:,} B")
    for kind, name in ((WALK_SK, "walk record"), (CURSOR_SK, "cursor record")):
        line(f"largest DynamoDB item: {name}", lambda r, k=kind: f"{r['largest_items'][k]:,} B")
    line("largest DynamoDB item: ledger record", lambda r: f"{r['largest_items'][LEDGER_SK]:,} B")
    services = sorted({s for r in rows for s in r["calls"]}, key=lambda s: (s != "pleo", s))
    for service in services:
        line(f"calls: {service}", lambda r, s=service: f"{r['calls'].get(s, 0):,}")
    line("peak RSS of the function's process", lambda r: f"{r['peak_rss_mib']:,.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per invocation")
    parser.add_argument("--pace", type=int, default=1_000_000, help="requests per minute")
    parser.add_argument("--write-docs", action="store_true", help="into docs/performance.md")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "layers" / "scope_core"), str(ROOT / "functions" / "scope_job")]
    logging.getLogger("pleo_scope").setLevel(logging.WARNING)
    if args.one:  # one job size in this fresh process: a clean peak RSS
        print("RESULT " + json.dumps(run(args.one, args.budget, args.pace)))
        return
    rows = [in_child(items, args.budget, args.pace) for items in sorted(args.items)]
    text = table(rows, args.budget, args.pace)
    print(text)
    if args.write_docs:
        SECTION.write(text)


if __name__ == "__main__":
    main()
