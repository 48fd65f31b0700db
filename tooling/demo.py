"""`make demo`: the whole flow on the embedded defaults.

Starts the Pleo simulator and moto's server on loopback, creates the resources from
template.yaml, seeds a claimed job, invokes the ScopeJob handler (which hands over to the
real state machine when the job does not fit in one invocation), drains the queue like a
downstream consumer (one line per work unit consumed), and prints where the scope went.

    python -m tooling.demo [--items 2500] [--lambda-timeout 900] [--page-size 100]
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

from tqdm import tqdm

from tooling.executions import follow_walk
from tooling.local_stack import (
    LocalLambdaContext,
    LocalStack,
    local_stack,
    route_lambda,
    short_invocation_settings,
)
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.progress import Progress, progress


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2500, help="items in the seeded job")
    parser.add_argument("--page-size", type=int, default=100)
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
        with route_lambda(app.lambda_handler, args.lambda_timeout) as invocations:
            app.app.service.observer = bars
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
        manifest = json.loads(
            stack.client("s3")
            .get_object(Bucket=result["scope"]["bucket"], Key=result["scope"]["manifestKey"])[
                "Body"
            ]
            .read()
        )
    in_order = consumer.positions == list(range(len(consumer.positions))) and (
        consumer.units == list(range(len(consumer.units)))
    )
    print()
    print(f"job             {job.id}")
    print(f"pages fetched   {result['pagesFetched']:,}")
    seen = manifest["seenCountsByStatus"]
    print(f"items seen      {sum(seen.values()):,}  {seen}")
    print(f"items in scope  {result['itemsInScope']:,}  {manifest['countsByStatus']}")
    print(f"scope           s3://{result['scope']['bucket']}/{result['scope']['key']}")
    print(f"manifest        s3://{result['scope']['bucket']}/{result['scope']['manifestKey']}")
    print(f"sha256          {manifest['sha256']}")
    print(
        f"units consumed  {len(consumer.units):,} ({len(consumer.positions):,} items,"
        f" in scope order: {in_order})"
    )
    if execution is not None:
        print(f"step functions  {len(invocations)} loop invocations, {executions} execution(s)")
    print(f"elapsed         {time.perf_counter() - started:.1f} s")
    if len(consumer.positions) != result["itemsInScope"] or not in_order:
        sys.exit("the queue does not hold the scope exactly once, in order")


if __name__ == "__main__":
    main()
