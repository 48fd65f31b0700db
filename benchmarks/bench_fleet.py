"""The month-end storm through the real entry points, on the local stack. Prints figures.

40 companies claim at once: 29 a small job (300 items), 10 a large one (20,000), one company
3 jobs of 5,000 at once. Each trigger is an "Export Job Claimed" event put on the bus, in a
random order (fixed seed) with the large ones among the first; the template's rule puts it on
the admission queue, the poller standing in for Lambda's SQS event source (its maximum
concurrency, 8) invokes the function, which works one slice and hands a large walk over to
the Step Functions loop (moto runs the real ASL, its tasks call the function here). Each
company has a credential of its own in the tenant registry; the simulator answers after
100 ms and limits each credential to 300 requests in any 60 s (429 + Retry-After); every AWS
call waits 10 ms first.

The last line, exactly (one line):
`fleet: companies=40 jobs=42 throttled=T max_rate_ratio=R makespan_ratio=M`
` small_p95_s=S ddb_per_request=D`
- T: the 429s the simulator answered;
- R: the most requests of one company in any 10 s, divided by a sixth of its per-minute limit;
- M: the storm's wall time (first trigger to last job published) divided by its floor, the
  larger of (the slowest company's pages x max(latency, 60/limit), its jobs one after another)
  and (all pages x latency / concurrency);
- S: the 95th percentile of the small jobs' trigger-to-published seconds;
- D: the limiter's DynamoDB calls per Pleo request.
Goals: T = 0, R <= 1.05, M <= 1.25, S <= 10, D <= 0.2.

`--baseline` runs the same storm as it ran before admission and the fleet-wide limiter: each
trigger an asynchronous invocation (what the rule made), under a function concurrency of 8
(a throttled event retried by Lambda's back-off, 1 s doubling to 5 minutes, with jitter), no
time slice, each process pacing itself at PleoMaxRequestsPerMinute (500). `--compare` runs
both; `--write-docs` writes their table into docs/performance.md. `--scale` shrinks the jobs
(0.05: 15, 1,000 and 250 items) and `--slice` the time slice, for a quick run.

    python -m benchmarks.bench_fleet [--scale 0.05 --slice 1] [--baseline | --compare]
        [--write-docs]

Each stand-in runs in a process of its own, so that the figures are the design's, not one
interpreter's: the simulator (benchmarks/storm_simulator.py), moto's server, which runs the
real ASL and forwards Lambda's Invoke to a runtime here (tooling/testkit/moto_lambda_server.py),
DynamoDB and S3 each on a moto server of its own (one GIL served every call before),
and the function's containers, processes that run one invocation at a time and are reused
warm, as Lambda's (benchmarks/lambda_pool.py; started before the storm, as many as it keeps
busy). The driver puts the triggers and polls the admission queue at 8; the loop's
invocations are not counted against those 8; the most invocations at once (admission and
loop together) is printed above the last line, with a profile of the small jobs' invocations
(every invocation, with its AWS calls: out/bench_fleet.log).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmarks.lambda_pool import ContainerPool, Reply, lambda_runtime
from benchmarks.process_cpu import children_by_port, cpu_by_child
from benchmarks.processes import moto_process
from benchmarks.storm_shape import (
    Company,
    StormShape,
    build_companies,
    floor_seconds,
    trigger_order,
)
from benchmarks.storm_simulator import storm_simulator
from tooling import ROOT
from tooling.build.template import Template
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.rate_meter import CredentialReport, credential_of
from tooling.reports.docs_writer import DocSection
from tooling.testkit.admission_poller import poll_admission_queue
from tooling.testkit.local_function import create_trigger_rule, log_line
from tooling.testkit.local_stack import Invocation, LocalStack, local_stack

SECTION = DocSection("performance.md", "bench-fleet")
README_SECTION = DocSection("README.md", "bench-fleet", docs=ROOT)
"""The same table in the README, beside the storm as it ran before (`--write-docs`)."""
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
LOG = Path(__file__).resolve().parent.parent / "out" / "bench_fleet.log"


@dataclass
class StormResult:
    mode: str
    companies: int
    jobs: int
    throttled: int
    max_rate_ratio: float
    makespan: float
    floor: float
    small_p95: float
    ddb_per_request: float
    requests: int
    unfinished: int
    peak_invocations: int

    @property
    def makespan_ratio(self) -> float:
        return self.makespan / self.floor if self.floor else float("inf")

    def line(self) -> str:
        return (
            f"fleet: companies={self.companies} jobs={self.jobs} throttled={self.throttled}"
            f" max_rate_ratio={self.max_rate_ratio:.2f} makespan_ratio={self.makespan_ratio:.2f}"
            f" small_p95_s={self.small_p95:.1f} ddb_per_request={self.ddb_per_request:.3f}"
        )


def register_tenants(aws: LocalStack, shape: StormShape, companies: list[Company]) -> None:
    """Each company's credential in Secrets Manager and its record in the tenant registry."""
    from pleo_scope.aws.tenants import DynamoTenantRegistry
    from pleo_scope.tenants import ApiKeyCredential, Tenant

    table = aws.function_env.get("TENANT_TABLE_NAME")
    if not table:
        raise SystemExit("bench_fleet needs the tenant registry (TENANT_TABLE_NAME) in the stack")
    prefix = aws.function_env.get("TENANT_SECRET_PREFIX", "")
    secrets = aws.client("secretsmanager")
    registry = DynamoTenantRegistry(aws.client("dynamodb"), table)
    budget = max(1, math.floor(shape.limit_per_minute * shape.budget_ratio))
    for company in companies:
        arn = secrets.create_secret(
            Name=f"{prefix}{company.id}", SecretString=json.dumps({"apiKey": company.api_key})
        )["ARN"]
        registry.put(
            Tenant(
                company_id=company.id,
                status="active",
                credential=ApiKeyCredential(arn),
                max_requests_per_minute=budget,
            )
        )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Observed:
    """What the bench watches of the function, from its containers' replies: when each job's
    walk finished (published), and every invocation (for the profile and the log)."""

    log: TextIO
    done: dict[str, float] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    origin: float | None = None
    """The storm's start (time.monotonic()): the log gives each invocation's start from it."""

    def __call__(self, reply: Reply) -> None:
        with self.lock:
            for job_id, when in reply.done:
                self.done.setdefault(job_id, when)
            self.replies.append(reply)
        invocation = Invocation(
            "RequestResponse",
            reply.event,
            reply.seconds,
            result=reply.result if reply.error is None else None,
            error=reply.error,
        )
        print(
            f"{log_line(invocation)}  {self._since_origin(reply.started)}"
            f"aws={reply.aws_calls} in {reply.aws_seconds:.2f} s"
            f" cpu={reply.cpu_seconds:.2f}"
            f" container={reply.container}#{reply.serial}"
            f"  {busiest(reply.operations, reply.operation_seconds)}",
            file=self.log,
            flush=True,
        )

    def _since_origin(self, started: float) -> str:
        return "" if self.origin is None else f"from={started - self.origin:+.2f}s "


def busiest(operations: dict[str, int], seconds: dict[str, float], shown: int = 12) -> str:
    """An invocation's most frequent AWS calls and their wall time, for the log:
    "dynamodb.UpdateItem=412/3.1s ..." (`seconds` is by operation name: UpdateItem)."""
    ranked = sorted(operations.items(), key=lambda item: (-item[1], item[0]))[:shown]
    return " ".join(
        f"{name}={count}/{seconds.get(name.rsplit('.', 1)[-1], 0.0):.1f}s" for name, count in ranked
    )


@contextmanager
def drained_scope_queue(aws: LocalStack) -> Iterator[None]:
    """A consumer deleting the work units as downstream would (moto slows with depth)."""
    stop = threading.Event()
    sqs, url = aws.client("sqs"), aws.physical["ScopeQueue"]

    def drain() -> None:
        while not stop.is_set():
            try:
                reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                messages = reply.get("Messages", [])
                if messages:
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                            for n, m in enumerate(messages)
                        ],
                    )
            except Exception:  # the server going away at the end
                stop.wait(0.2)

    thread = threading.Thread(target=drain, name="scope-consumer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class TriggerBus:
    """The rule's bus, ready before the storm (the template read, the client made and
    connected: the driver's own start-up is not the storm's), then the triggers put on it."""

    def __init__(self, aws: LocalStack) -> None:
        parameters = Template.load().document["Parameters"]
        self.bus = str(parameters["EventBusName"]["Default"])
        self.source = str(parameters["EventSource"]["Default"])
        self.events = aws.client("events")
        self.events.describe_event_bus(Name=self.bus)

    def put(self, order: list[tuple[Company, SimJob]]) -> dict[str, float]:
        """Ten to a call (PutEvents' maximum), in order; when each was put."""
        sent: dict[str, float] = {}
        for start in range(0, len(order), 10):
            batch = order[start : start + 10]
            reply = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus,
                        "Source": self.source,
                        "DetailType": "Export Job Claimed",
                        "Detail": json.dumps({"jobId": job.id, "companyId": company.id}),
                    }
                    for company, job in batch
                ]
            )
            if reply.get("FailedEntryCount"):
                raise SystemExit(f"the bus refused triggers: {reply['Entries']}")
            now = time.monotonic()
            for _, job in batch:
                sent[job.id] = now
        return sent


def invoke_as_before(
    pool: ContainerPool, order: list[tuple[Company, SimJob]], shape: StormShape, source: str
) -> dict[str, float]:
    """Before admission: each trigger an asynchronous invocation, at most `concurrency` at once;
    one Lambda throttles is retried after a back-off (1 s doubling to 300 s, full jitter)."""
    slots = threading.Semaphore(shape.concurrency)
    rng = random.Random(shape.seed + 2)
    rng_lock = threading.Lock()
    sent: dict[str, float] = {}

    def deliver(event: dict[str, Any]) -> None:
        delay = 1.0
        while not slots.acquire(blocking=False):
            with rng_lock:
                wait = rng.uniform(0, delay)
            time.sleep(wait)
            delay = min(300.0, delay * 2)
        try:
            pool.invoke(event, 900)  # Lambda's retries of a failed event are not modelled
        finally:
            slots.release()

    for company, job in order:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Export Job Claimed",
            "source": source,
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "eu-west-1",
            "resources": [],
            "detail": {"jobId": job.id, "companyId": company.id},
        }
        sent[job.id] = time.monotonic()
        threading.Thread(target=deliver, args=(event,), daemon=True).start()
    return sent


def warm_containers(shape: StormShape, companies: list[Company]) -> int:
    """As many as the storm keeps busy at once: the admission's, and one per walk that goes
    on in the loop (every job but the small ones); never more than there are jobs."""
    jobs = sum(len(c.jobs) for c in companies)
    walks = sum(len(c.jobs) for c in companies if c.kind != "small")
    return min(jobs, shape.concurrency + walks)


@contextmanager
def containers(pool: ContainerPool) -> Iterator[ContainerPool]:
    try:
        yield pool
    finally:
        pool.close()


def run_storm(shape: StormShape, *, baseline: bool) -> StormResult:
    """The storm, each stand-in in a process of its own: the simulator, moto's server (the
    ASL runs there; its Lambda forwards to the runtime), the function's containers. This
    process only puts the triggers, polls the admission queue and watches."""
    companies = build_companies(shape, PleoSimulator())  # as the simulator's process does
    overrides = {**QUIET, "PLEO_PAGE_SIZE": str(shape.page_size)}
    if shape.slice_seconds is not None:
        overrides["ADMISSION_SLICE_SECONDS"] = str(shape.slice_seconds)
    if baseline:
        overrides["RATE_BUDGET_TABLE_NAME"] = ""  # each process paces itself, as before
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w", encoding="utf-8") as log:
        observed = Observed(log)
        pool = ContainerPool(shape.aws_latency, on_reply=observed)
        with (
            storm_simulator(shape) as pleo,
            lambda_runtime(pool) as runtime,
            moto_process(runtime) as endpoint,
            moto_process() as dynamodb,
            moto_process() as s3,
            local_stack(
                pleo.url,
                endpoint=endpoint,
                service_endpoints={"dynamodb": dynamodb, "s3": s3},
                overrides=overrides,
                stack=f"bench-fleet-{uuid.uuid4().hex[:6]}",
            ) as aws,
            containers(pool),
        ):
            register_tenants(aws, shape, companies)
            pool.warm(warm_containers(shape, companies))  # the containers read the stack's env
            order = trigger_order(shape, companies)
            servers = {endpoint: "moto main", dynamodb: "moto DynamoDB", s3: "moto S3"}
            by_port = {int(url.rsplit(":", 1)[1]): name for url, name in servers.items()}
            names = {**pool.pids(), pleo.pid: "simulator", **children_by_port(by_port)}
            cpu_before = cpu_by_child(names)
            with drained_scope_queue(aws):
                if baseline:
                    source = str(Template.load().document["Parameters"]["EventSource"]["Default"])
                    started = observed.origin = time.monotonic()
                    sent = invoke_as_before(pool, order, shape, source)
                    finished = wait_for_jobs(observed, order, shape.timeout_seconds)
                else:
                    create_trigger_rule(aws)
                    bus = TriggerBus(aws)
                    with poll_admission_queue(aws, shape.concurrency):
                        started = observed.origin = time.monotonic()
                        sent = bus.put(order)
                        finished = wait_for_jobs(observed, order, shape.timeout_seconds)
            cpu_after = cpu_by_child({**names, **pool.pids()})
            reports = pleo.report()
    cpu = {name: s - cpu_before.get(name, 0.0) for name, s in cpu_after.items()}
    print(profile(observed.replies, companies), flush=True)
    print(
        "cpu: "
        + ", ".join(f"{name} {cpu[name]:.0f} s" for name in sorted(cpu, key=lambda n: -cpu[n]))
        + f" in the storm's {finished - started:.0f} s on {os.cpu_count()} cores",
        flush=True,
    )
    return measure(
        shape,
        companies,
        reports,
        observed,
        sent,
        started,
        finished,
        sum(pool.store_calls.values()),
        pool.peak,
        baseline,
    )


def job_of(event: dict[str, Any]) -> str | None:
    """The job an invocation's event is about (an admission batch of one, a trigger, a loop
    state)."""
    records = event.get("Records")
    if isinstance(records, list) and records:
        try:
            event = json.loads(records[0].get("body") or "{}")
        except ValueError:
            return None
    detail = event.get("detail")
    job = event.get("jobId") or (detail.get("jobId") if isinstance(detail, dict) else None)
    return job if isinstance(job, str) else None


def profile(replies: list[Reply], companies: list[Company]) -> str:
    """Where a small job's time goes: its invocations, their seconds and AWS calls."""
    small = {j.id for c in companies if c.kind == "small" for j in c.jobs}
    admitted = [r for r in replies if "Records" in r.event]
    per_job: dict[str, list[Reply]] = {}
    for reply in replies:
        job = job_of(reply.event)
        if job in small:
            per_job.setdefault(job, []).append(reply)
    seconds = [r.seconds for r in admitted]
    in_aws = [r.aws_seconds for r in admitted]
    calls = [sum(r.aws_calls for r in rs) for rs in per_job.values()]
    # A loop state carries its continuation (what local_function.log_line calls "loop").
    looped = sum(1 for rs in per_job.values() if any("continuation" in r.event for r in rs))
    return (
        f"profile: {len(admitted)} admission invocations, median {percentile(seconds, 0.5):.1f} s,"
        f" p95 {percentile(seconds, 0.95):.1f} s (of which in AWS calls: median"
        f" {percentile(in_aws, 0.5):.1f} s); small jobs: median"
        f" {percentile([float(c) for c in calls], 0.5):.0f} AWS calls each,"
        f" {looped} of {len(per_job)} went on in the loop;"
        f" {len(replies) - len(admitted)} other invocations"
    )


def wait_for_jobs(
    observed: Observed, order: list[tuple[Company, SimJob]], timeout_seconds: float
) -> float:
    deadline = time.monotonic() + timeout_seconds
    total = len(order)
    reported = time.monotonic()
    while time.monotonic() < deadline:
        with observed.lock:
            done = len(observed.done)
        if done >= total:
            break
        if time.monotonic() - reported > 15:
            print(f"  ... {done}/{total} jobs published", file=sys.stderr, flush=True)
            reported = time.monotonic()
        time.sleep(0.1)
    with observed.lock:
        return max(observed.done.values(), default=time.monotonic())


def measure(
    shape: StormShape,
    companies: list[Company],
    credential_reports: list[CredentialReport],
    observed: Observed,
    sent: dict[str, float],
    started: float,
    finished: float,
    store_calls: int,
    peak_invocations: int,
    baseline: bool,
) -> StormResult:
    reports = {r.credential: r for r in credential_reports}
    sixth = shape.limit_per_minute / 6
    ratios, requests = [], 0
    for company in companies:
        header = "Basic " + base64.b64encode(f"{company.api_key}:".encode()).decode()
        report = reports.get(credential_of({"authorization": header}))
        if report is not None:
            ratios.append(report.most_in_10s / sixth)
            requests += report.requests
    small_jobs = [j for c in companies if c.kind == "small" for j in c.jobs]
    small = [observed.done[j.id] - sent[j.id] for j in small_jobs if j.id in observed.done]
    jobs = [j for c in companies for j in c.jobs]
    unfinished = sum(1 for j in jobs if j.id not in observed.done)
    return StormResult(
        mode="baseline" if baseline else "fleet",
        companies=len(companies),
        jobs=len(jobs),
        throttled=sum(r.throttled for r in reports.values()),
        max_rate_ratio=max(ratios, default=0.0),
        makespan=finished - started,
        floor=floor_seconds(shape, companies),
        # S is the small jobs' figure: infinite only when one of them never finished.
        small_p95=percentile(small, 0.95) if len(small) == len(small_jobs) else float("inf"),
        ddb_per_request=store_calls / requests if requests else 0.0,
        requests=requests,
        unfinished=unfinished,
        peak_invocations=peak_invocations,
    )


def table(results: list[StormResult], shape: StormShape, command: str) -> str:
    names = {
        "fleet": "admission queue (8) + fleet-wide budget",
        "baseline": "before: async invocations (8) + per-process pacing",
    }
    lines = [
        f"`{command}`: {results[0].companies} companies, {results[0].jobs} jobs"
        f" ({shape.small_companies} x {shape.small_items:,} items,"
        f" {shape.large_companies} x {shape.large_items:,},"
        f" 1 x {shape.multi_jobs} x {shape.multi_items:,}), {shape.limit_per_minute} requests/min"
        f" per company at the simulator, {shape.pleo_latency * 1e3:g} ms Pleo latency,"
        f" {shape.aws_latency * 1e3:g} ms AWS latency.",
        "",
        "| run | 429s | max rate ratio | makespan / floor | small p95 (s) | DynamoDB per request"
        " | unfinished | most invocations at once |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {names[r.mode]} | {r.throttled} | {r.max_rate_ratio:.2f}"
            f" | {r.makespan_ratio:.2f} ({r.makespan:.0f} s / {r.floor:.0f} s)"
            f" | {r.small_p95:.1f} | {r.ddb_per_request:.3f} | {r.unfinished}"
            f" | {r.peak_invocations} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every job's items")
    parser.add_argument("--slice", type=float, help="ADMISSION_SLICE_SECONDS (the template's)")
    parser.add_argument("--small", type=int, default=StormShape.small_companies, help="companies")
    parser.add_argument("--large", type=int, default=StormShape.large_companies, help="companies")
    parser.add_argument(
        "--multi-jobs", type=int, default=StormShape.multi_jobs, help="of the one company"
    )
    parser.add_argument("--seed", type=int, default=StormShape.seed)
    parser.add_argument("--timeout", type=float, default=StormShape.timeout_seconds)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--baseline", action="store_true", help="admission and limiter off")
    mode.add_argument("--compare", action="store_true", help="the baseline, then the fleet")
    parser.add_argument("--write-docs", action="store_true", help="docs/performance.md's table")
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = StormShape(
        small_companies=args.small,
        large_companies=args.large,
        multi_jobs=args.multi_jobs,
        seed=args.seed,
        slice_seconds=args.slice,
        timeout_seconds=args.timeout,
    )
    if args.scale != 1.0:
        shape = shape.scaled(args.scale)
    if args.compare:
        # A process per storm: the function's module reads its settings once, at import.
        results = [storm_in_process(sys.argv[1:], baseline) for baseline in (True, False)]
    else:
        results = [run_storm(shape, baseline=args.baseline)]
        if args.result_file is not None:
            args.result_file.write_text(json.dumps(results[0].__dict__), encoding="utf-8")
            return
    for result in results:
        print(
            f"{result.mode}: {result.requests:,} Pleo requests, makespan {result.makespan:.1f} s,"
            f" floor {result.floor:.1f} s, {result.unfinished} unfinished,"
            f" at most {result.peak_invocations} invocations at once",
            flush=True,
        )
    if args.write_docs:
        command = " ".join(["python -m benchmarks.bench_fleet", *sys.argv[1:]])
        for section in (SECTION, README_SECTION):
            section.write(table(results, shape, command))
    for result in results:
        print(result.line(), flush=True)


def storm_in_process(arguments: list[str], baseline: bool) -> StormResult:
    kept = [a for a in arguments if a not in ("--compare", "--write-docs")]
    with tempfile.TemporaryDirectory() as folder:
        result_file = Path(folder) / "result.json"
        command = [sys.executable, "-m", "benchmarks.bench_fleet", *kept]
        command += ["--baseline"] if baseline else []
        subprocess.run([*command, "--result-file", str(result_file)], check=True)
        return StormResult(**json.loads(result_file.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
