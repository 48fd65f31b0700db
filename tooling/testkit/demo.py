"""`make demo`: the whole flow on the embedded defaults.

Starts the Pleo simulator and moto's server on loopback, creates the resources from
template.yaml, seeds a claimed job, invokes the ScopeJob handler (which hands over to the
real state machine when the job does not fit in one invocation), drains the queue like a
downstream consumer (one line per work unit consumed), then three companies' jobs
(tooling/testkit/demo_tenants.py: apiKey, accessToken, and OAuth with tokens expiring during
its walk), copies the scope and its manifest
out of moto to out/demo/<job>/ (moto stops with the demo), and prints where they are.

    python -m tooling.testkit.demo [--items 2500] [--lambda-timeout 900] [--page-size 100]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tooling.build.template import TEMPLATE
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.testkit.demo_tenants import EARLIEST_REFRESH, render, run_companies
from tooling.testkit.executions import follow_walk
from tooling.testkit.local_stack import (
    LocalLambdaContext,
    LocalStack,
    local_stack,
    route_lambda,
    short_invocation_settings,
)
from tooling.testkit.progress import Progress, progress

OUT = TEMPLATE.parent / "out" / "demo"


class ProgressBars:
    """A StepObserver: one bar for the walk (pages), one for the publish (units)."""

    def __init__(self, walk: Progress) -> None:
        self.walk = walk
        self.publish: Progress | None = None

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == "checkpoint_written":  # in page order (pages are archived in parallel)
            self.walk.update(number - self.walk.n)
        elif step == "scope_written":
            self.walk.close()
        elif step == "units_planned":
            self.publish = progress(total=number, unit="unit", desc="publish")
        elif step == "ledger_written" and self.publish is not None:
            self.publish.update(number + 1 - self.publish.n)

    def close(self) -> None:
        self.walk.close()
        if self.publish is not None:
            self.publish.close()


class Consumer(threading.Thread):
    """Drains the queue as a downstream step would, one line per work unit consumed, checking
    the FIFO order by unit and by position."""

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(daemon=True, name="consumer")
        self.sqs = stack.client("sqs")
        self.url = stack.physical["ScopeQueue"]
        self.positions: list[int] = []
        self.units: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set() or self._receive():
            self._receive()

    def _receive(self) -> bool:
        reply = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
        messages = reply.get("Messages", [])
        if not messages:
            time.sleep(0.05)
            return False
        for message in messages:
            unit = json.loads(message["Body"])
            positions = [item["position"] for item in unit["items"]]
            self.units.append(unit["unit"])
            self.positions += positions
            tqdm.write(
                f"consumed unit {unit['unit'] + 1:>4}/{unit['unitCount']}:"
                f" {len(positions):>3} items, positions {positions[0]:,}-{positions[-1]:,}"
            )
        self.sqs.delete_message_batch(
            QueueUrl=self.url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )
        return True


@dataclass(frozen=True)
class KeptScope:
    scope: Path
    manifest: Path


def keep_scope(stack: LocalStack, location: dict[str, str], folder: Path) -> KeptScope:
    """Copy the published scope.jsonl and its manifest out of moto, which stops with the demo,
    to `folder`, where they can be read afterwards."""
    s3 = stack.client("s3")
    folder.mkdir(parents=True, exist_ok=True)
    kept = KeptScope(folder / "scope.jsonl", folder / "scope.json")
    for key, path in ((location["key"], kept.scope), (location["manifestKey"], kept.manifest)):
        path.write_bytes(s3.get_object(Bucket=location["bucket"], Key=key)["Body"].read())
    return kept


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(TEMPLATE.parent))
    except ValueError:
        return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2500, help="items in the seeded job")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="where the scope and its manifest are kept, under the job's id (default: out/demo)",
    )
    parser.add_argument(
        "--company-items",
        type=int,
        default=1500,
        help="items in each of the three companies' jobs (0: no companies)",
    )
    parser.add_argument(
        "--oauth-lifetime",
        type=float,
        default=1.0,
        help="seconds the OAuth company's access tokens last (they expire during its walk)",
    )
    parser.add_argument(
        "--oauth-latency",
        type=float,
        default=0.2,
        help="seconds Pleo takes per page for the OAuth company (so its walk outlasts them)",
    )
    parser.add_argument(
        "--lambda-timeout",
        type=float,
        default=900,
        help="seconds each invocation may run (small: the job goes on in Step Functions)",
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("pleo_scope").setLevel(logging.WARNING)

    job = SimJob(str(uuid.uuid4()), generated_items=args.items)
    simulator = PleoSimulator()
    simulator.add_job(job)
    overrides = {
        "PLEO_PAGE_SIZE": str(args.page_size),
        **short_invocation_settings(args.lambda_timeout),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    started = time.perf_counter()
    with serve(simulator) as pleo_url, local_stack(pleo_url, overrides=overrides) as stack:
        print(f"Pleo simulator  {pleo_url}   (job {job.id}: {args.items:,} items, claimed)")
        print(f"moto server     {stack.endpoint}   (resources from template.yaml)")
        app = importlib.import_module("app")
        consumer = Consumer(stack)
        consumer.start()
        pages = math.ceil(args.items / args.page_size) or 1
        bars = ProgressBars(progress(total=pages, unit="page", desc="walk"))
        with (
            route_lambda(app.lambda_handler, args.lambda_timeout) as invocations,
            app.app.injected(observer=bars),
        ):
            result = app.lambda_handler({"jobId": job.id}, LocalLambdaContext(args.lambda_timeout))
            execution, executions = None, 0
            if not result["done"]:
                bars.walk.set_description("walk (Step Functions)")
                walk = follow_walk(stack, job.id)
                execution = walk.final
                if execution["status"] != "SUCCEEDED":
                    sys.exit(f"state machine {execution['status']}: {execution.get('error')}")
                result = json.loads(execution["output"])
                executions = len(walk.executions)
        bars.close()
        consumer.stopping.set()
        consumer.join(timeout=60)
        kept = keep_scope(stack, result["scope"], args.out / job.id)
        manifest = json.loads(kept.manifest.read_bytes())
        companies = []
        if args.company_items:
            print("\nthree companies on the same deployment, each triggered with its companyId")
            with route_lambda(app.lambda_handler, args.lambda_timeout):
                companies = run_companies(
                    stack,
                    simulator,
                    app.lambda_handler,
                    items=args.company_items,
                    lambda_timeout=args.lambda_timeout,
                    oauth_lifetime=args.oauth_lifetime,
                    oauth_latency=args.oauth_latency,
                )
        unit_size = int(stack.function_env.get("SCOPE_UNIT_SIZE") or 100)
    in_order = consumer.positions == list(range(len(consumer.positions))) and (
        consumer.units == list(range(len(consumer.units)))
    )
    print()
    print(f"job             {job.id}")
    print(f"pages fetched   {result['pagesFetched']:,}")
    seen = manifest["seenCountsByStatus"]
    print(f"items seen      {sum(seen.values()):,}  {seen}")
    print(f"items in scope  {result['itemsInScope']:,}  {manifest['countsByStatus']}")
    print(f"scope           {shown(kept.scope)}")
    print(f"manifest        {shown(kept.manifest)}")
    bucket = result["scope"]["bucket"]
    print(f"                (copies of s3://{bucket}/{result['scope']['key']} and its manifest,")
    print("                kept here: the local stack stopped with the demo)")
    print(f"sha256          {manifest['sha256']}")
    print(
        f"units consumed  {len(consumer.units):,} ({len(consumer.positions):,} items,"
        f" in scope order: {in_order})"
    )
    if execution is not None:
        print(f"step functions  {len(invocations)} loop invocations, {executions} execution(s)")
    if companies:
        print()
        print(render(companies))
        oauth = next(c for c in companies if c.company.kind == "oauth")
        print(
            f"OAuth company: {oauth.refreshes} refreshes in a {oauth.walk_seconds:.1f} s walk of"
            f" {args.oauth_lifetime:g} s tokens: one per token life. A token is refreshed by the"
            " first request in the last fifth of its life,\nor by the next one when none came"
            " in it. token life used: the share of its lifetime each replaced token had run"
            " (below half,\nthe demo fails). Every refresh rotated both tokens. 401s: requests"
            " Pleo refused before a refresh."
        )
    print(f"elapsed         {time.perf_counter() - started:.1f} s")
    if len(consumer.positions) != result["itemsInScope"] or not in_order:
        sys.exit("the queue does not hold the scope exactly once, in order")
    for company in companies:
        if any(share < EARLIEST_REFRESH for share in company.lives_used):
            sys.exit(
                f"company {company.company.id}: a token was refreshed before"
                f" {EARLIEST_REFRESH:.0%} of its life (more than one refresh per expiry)"
            )
        expected = math.ceil(company.result["itemsInScope"] / unit_size)
        if company.units != expected:
            sys.exit(f"company {company.company.id}: {company.units} units, not {expected}")


if __name__ == "__main__":
    main()
