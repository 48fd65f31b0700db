"""What the fleet-wide rate limiter costs in the month-end storm's mix: DynamoDB calls per
Pleo request, against the policy before and a floor, measured in the same run. Prints figures.

The mix is bench_fleet's (29 small jobs of 3 pages, one invocation each; 10 walks of 200
pages, an admission slice of 3 s then the loop; one company with 3 jobs of 50 pages at once;
291 requests/min per company, 100 ms per request, admission at 8), driven in simulated time
through the product's limiter (`tooling.testkit.budget_mix`): one `FleetRateLimiter` per
container, kept across its invocations, `release()` at each invocation's end. The timelines
are on DynamoDB (moto's server in a process of its own, a table as the template's
RateBudgetTable); every call is counted by a botocore hook. Time is simulated, so the
figures are counts and do not move with the machine's load.

    python -m benchmarks.bench_limiter [--latency 0.1]

`--latency 0.6`: walks slower than their slots (a starved process), whose slots lapse.
The last line:
    limiter: calls_per_request=D before=B floor=F max_rate_ratio=R
D and B: DynamoDB calls per Pleo request of the limiter now and of the policy before it
(2 s blocks only, the next at half a block, every leftover given back); F: each company's
requests in blocks of 8 s, one call each, nothing given back; R: the most requests of one
company in any 10 s over a sixth of its per-minute limit.
"""

from __future__ import annotations

import argparse
import os
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import boto3

from benchmarks.aws_calls import AwsCalls
from benchmarks.processes import moto_process
from pleo_scope.aws.rate_budget import KEY_ATTRIBUTE, DynamoRateBudgetStore
from pleo_scope.rate_budget import BlockPolicy
from tooling.testkit.budget_mix import BEFORE_POLICY, Mix, MixResult, run_mix
from tooling.testkit.local_stack import LOCAL_ENV, REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "bench-rate-budget"


def dynamodb(endpoint: str) -> DynamoDBClient:
    os.environ.update(LOCAL_ENV)
    session = boto3.session.Session()
    client: DynamoDBClient = session.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def run(client: DynamoDBClient, aws: AwsCalls, policy: BlockPolicy, mix: Mix) -> MixResult:
    store = DynamoRateBudgetStore(client, TABLE)
    result = run_mix(
        store, lambda: aws.calls["dynamodb.UpdateItem"], policy, mix, prefix=f"{uuid.uuid4()}-"
    )
    assert result.store_calls == store.calls.calls  # the adapter's count, to the call
    return result


def table(mix: Mix, rows: list[tuple[str, MixResult]], floor: MixResult) -> str:
    lines = [
        f"limiter in the storm's mix: {mix.small_jobs} x {mix.small_pages} pages,"
        f" {mix.large_jobs} x {mix.large_pages}, 1 company x {mix.multi_jobs} x"
        f" {mix.multi_pages}; {mix.per_minute:g} requests/min per company,"
        f" {mix.latency:g} s per request (simulated time, DynamoDB on moto)",
        f"{'policy':<58}{'requests':>9}{'calls':>7}{'per req':>9}{'waited':>8}{'back':>6}{'R':>6}",
    ]
    for name, r in rows:
        lines.append(
            f"{name:<58}{r.requests:>9,}{r.store_calls:>7,}{r.calls_per_request:>9.3f}"
            f"{r.budgets.blocks_waited:>8,}{r.budgets.give_backs:>6,}{r.max_rate_ratio:>6.2f}"
        )
    lines.append(
        f"{'floor: each company in 8 s blocks, nothing given back':<58}{floor.requests:>9,}"
        f"{floor.floor_calls:>7,}{floor.floor_calls / floor.requests:>9.3f}"
    )
    lines.append(
        "waited: blocks a request had to wait for (each invocation's first; the rest are"
        " reserved ahead); back: give-back calls; R: max_rate_ratio"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    args = parser.parse_args()
    mix = replace(Mix(), latency=args.latency)
    with moto_process() as endpoint:
        aws = AwsCalls()
        aws.install(existing=False)
        client = dynamodb(endpoint)
        before = run(client, aws, BEFORE_POLICY, mix)
        now = run(client, aws, BlockPolicy(), mix)
    rows = [
        ("before: 2 s blocks, next at half a block, all given back", before),
        ("now: 2 s first, doubling to 8 s alone, back when worth it", now),
    ]
    print(table(mix, rows, now))
    print(
        f"limiter: calls_per_request={now.calls_per_request:.3f}"
        f" before={before.calls_per_request:.3f}"
        f" floor={now.floor_calls / now.requests:.3f} max_rate_ratio={now.max_rate_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
