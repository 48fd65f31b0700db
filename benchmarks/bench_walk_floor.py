"""The walk against its floor (pages x Pleo's round trip), the serial way and pipelined, in
one run. Prints figures; asserts nothing.

The real handler on the local stack (simulator and moto in processes of their own). Pleo's
latency is injected by the simulator on every items request; AWS latency on every AWS call
of the function by a botocore event hook installed here (not in the product). Pacing is set
far above the page rate, so that the ratio measures the pipeline alone. The walk is timed
from the job check to the checkpoint of the last page (the step observer's seam).

    python -m benchmarks.bench_walk_floor [--pages 100] [--pleo-latency 0.1] [--aws-latency 0.01]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.aws_calls import AwsCalls
from benchmarks.processes import moto_process
from benchmarks.simulator_process import simulator_process
from tooling.pleo_sim.jobs import make_item
from tooling.testkit.local_stack import LocalLambdaContext, local_stack

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 100
DEPTH = 16  # ServiceSettings.walk_pipeline_depth's default


class WalkTimer:
    """Step observer: from the job check to the checkpoint of the last page."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.started = self.ended = 0.0

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == "job_checked":
            self.started = time.perf_counter()
        elif step == "checkpoint_written" and number == self.pages:
            self.ended = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def seed_job(pleo_url: str, pages: int, latency: float) -> str:
    """A job of `pages` full pages; one item in a hundred still to do (a small publish), so
    the run is about the walk. Pleo's latency on every items request."""
    job_id = str(uuid.uuid4())
    items = [
        make_item(job_id, str(uuid.uuid4()), "pending" if n % 100 == 0 else "successful")
        for n in range(pages * PAGE_SIZE)
    ]
    httpx.post(
        f"{pleo_url}/_sim/jobs", json={"id": job_id, "items": items}, timeout=60
    ).raise_for_status()
    fault = {"kind": "latency", "seconds": latency, "endpoint": "items"}
    httpx.post(f"{pleo_url}/_sim/jobs/{job_id}/faults", json=[fault]).raise_for_status()
    return job_id


def walk_once(
    app: Any, aws: AwsCalls, pleo_url: str, args: argparse.Namespace, depth: int
) -> dict[str, Any]:
    settings = dataclasses.replace(app.app.service.settings, walk_pipeline_depth=depth)
    timer = WalkTimer(args.pages)
    job_id = seed_job(pleo_url, args.pages, args.pleo_latency)
    aws.calls.clear()
    with app.app.injected(settings=settings, observer=timer):
        result = app.lambda_handler({"jobId": job_id}, LocalLambdaContext(900))
    assert result["done"], result
    assert result["pagesFetched"] == args.pages, result
    return {"seconds": timer.seconds, "calls": aws.calls.copy()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--pleo-latency", type=float, default=0.1, help="seconds per page")
    parser.add_argument("--aws-latency", type=float, default=0.01, help="seconds per AWS call")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "layers" / "scope_core"), str(ROOT / "functions" / "scope_job")]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    overrides = {
        "PLEO_PAGE_SIZE": str(PAGE_SIZE),
        "PLEO_MAX_REQUESTS_PER_MINUTE": "1000000",  # far above the page rate
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    with (
        simulator_process() as pleo_url,
        moto_process() as endpoint,
        local_stack(pleo_url, endpoint=endpoint, overrides=overrides),
    ):
        app = importlib.import_module("app")
        logging.getLogger("pleo_scope").setLevel(logging.WARNING)
        aws = AwsCalls(args.aws_latency)
        aws.install(existing=True)
        warm = argparse.Namespace(**{**vars(args), "pages": 2})
        walk_once(app, aws, pleo_url, warm, DEPTH)
        serial = walk_once(app, aws, pleo_url, args, 0)
        pipelined = walk_once(app, aws, pleo_url, args, DEPTH)
    floor = args.pages * args.pleo_latency
    print(
        f"walk of {args.pages} pages of {PAGE_SIZE} items, Pleo latency {args.pleo_latency:.3f} s"
        f" per page, AWS latency {args.aws_latency:.3f} s per call (real handler, local stack):"
    )
    print(f"  floor (pages x Pleo latency)     {floor:7.2f} s")
    for name, run in (
        ("serial (pipelining off)", serial),
        (f"pipelined ({DEPTH} in flight)", pipelined),
    ):
        calls = run["calls"]
        checkpoints = calls["dynamodb.UpdateItem"]
        print(
            f"  {name:<32} {run['seconds']:7.2f} s  walk/floor {run['seconds'] / floor:.2f}"
            f"  (S3 puts {calls['s3.PutObject']}, DynamoDB puts {calls['dynamodb.PutItem']},"
            f" updates {checkpoints})"
        )
    print(f"walk/floor: {pipelined['seconds'] / floor:.2f}")


if __name__ == "__main__":
    main()
