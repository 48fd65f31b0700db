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

One process holds the function's every invocation (as the local stack does): concurrent walks
of one company share one process's budget object, where in AWS each container has its own.
The loop's invocations are not counted against the admission's 8; the most invocations at
once (admission and loop together) is printed above the last line.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import math
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.aws_calls import AwsCalls
from tooling.build.template import Template
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.faults import Fault
from tooling.pleo_sim.rate_meter import RateLimit, credential_of
from tooling.pleo_sim.server import serve
from tooling.reports.docs_writer import DocSection
from tooling.testkit.local_function import serve_function
from tooling.testkit.local_stack import LocalLambdaContext, LocalStack, local_stack, route_lambda

SECTION = DocSection("performance.md", "bench-fleet")
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
READ_SCOPE = "export-jobs:read"
LOG = Path(__file__).resolve().parent.parent / "out" / "bench_fleet.log"


@dataclass(frozen=True)
class StormShape:
    small_companies: int = 29
    small_items: int = 300
    large_companies: int = 10
    large_items: int = 20_000
    multi_jobs: int = 3
    multi_items: int = 5_000
    limit_per_minute: int = 300
    budget_ratio: float = 0.97
    """The companies' maxRequestsPerMinute as a share of Pleo's limit (aim under it)."""
    pleo_latency: float = 0.1
    aws_latency: float = 0.01
    concurrency: int = 8
    page_size: int = 100
    seed: int = 21
    slice_seconds: float | None = None
    """None: the template's AdmissionSliceSeconds."""
    timeout_seconds: float = 1800

    def scaled(self, factor: float) -> StormShape:
        def items(n: int) -> int:
            return max(1, round(n * factor))

        return StormShape(
            **{
                **self.__dict__,
                "small_items": items(self.small_items),
                "large_items": items(self.large_items),
                "multi_items": items(self.multi_items),
            }
        )


@dataclass
class Company:
    id: str
    kind: str  # small, large, multi
    api_key: str
    jobs: list[SimJob] = field(default_factory=list)


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


def build_companies(shape: StormShape, simulator: PleoSimulator) -> list[Company]:
    rng = random.Random(shape.seed)
    kinds = (
        [("small", 1, shape.small_items)] * shape.small_companies
        + [("large", 1, shape.large_items)] * shape.large_companies
        + [("multi", shape.multi_jobs, shape.multi_items)]
    )
    companies = []
    for kind, jobs, items in kinds:
        company = Company(str(uuid.UUID(int=rng.getrandbits(128), version=4)), kind, "")
        company.api_key = f"key-{company.id[:8]}-{rng.getrandbits(32):08x}"
        simulator.add_company(company.id, api_keys={company.api_key: {READ_SCOPE}})
        for _ in range(jobs):
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            job = simulator.add_job(SimJob(job_id, generated_items=items, company_id=company.id))
            simulator.inject(job.id, Fault("latency", seconds=shape.pleo_latency))
            company.jobs.append(job)
        companies.append(company)
    return companies


def trigger_order(shape: StormShape, companies: list[Company]) -> list[tuple[Company, SimJob]]:
    """Random (the seed), the large jobs among the first: they are shuffled together with a
    few small ones into the head of the storm, the other small ones after them."""
    rng = random.Random(shape.seed + 1)
    large = [(c, j) for c in companies if c.kind != "small" for j in c.jobs]
    small = [(c, j) for c in companies if c.kind == "small" for j in c.jobs]
    rng.shuffle(small)
    head = large + small[:3]
    rng.shuffle(head)
    return head + small[3:]


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


def pages(items: int, page_size: int) -> int:
    return max(1, math.ceil(items / page_size))


def floor_seconds(shape: StormShape, companies: list[Company]) -> float:
    per_page = max(shape.pleo_latency, 60 / shape.limit_per_minute)
    slowest = max(
        sum(pages(j.item_count, shape.page_size) for j in c.jobs) * per_page for c in companies
    )
    every_page = sum(pages(j.item_count, shape.page_size) for c in companies for j in c.jobs)
    return max(slowest, every_page * shape.pleo_latency / shape.concurrency)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Observed:
    """What the bench watches of the function: when each job's walk finished (published),
    and how many invocations ran at once."""

    done: dict[str, float] = field(default_factory=dict)
    running: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, app: Any) -> None:
        """Wraps the handler module's `scope_step`, the one call every step goes through."""
        original: Callable[..., dict[str, Any]] = app.scope_step

        def scope_step(service: Any, request: Any, *args: Any) -> dict[str, Any]:
            result = original(service, request, *args)
            if result.get("done"):
                with self.lock:
                    self.done.setdefault(request.job_id, time.monotonic())
            return result

        app.scope_step = scope_step

    def counted(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def invoke(event: Any, context: Any) -> Any:
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                return handler(event, context)
            finally:
                with self.lock:
                    self.running -= 1

        return invoke


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


def put_triggers(aws: LocalStack, order: list[tuple[Company, SimJob]]) -> dict[str, float]:
    """On the rule's bus, ten to a call (PutEvents' maximum), in order; when each was put."""
    template = Template.load()
    parameters = template.document["Parameters"]
    bus = str(parameters["EventBusName"]["Default"])
    source = str(parameters["EventSource"]["Default"])
    events = aws.client("events")
    sent: dict[str, float] = {}
    for start in range(0, len(order), 10):
        batch = order[start : start + 10]
        reply = events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": source,
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
    app: Any, order: list[tuple[Company, SimJob]], shape: StormShape, observed: Observed
) -> dict[str, float]:
    """Before admission: each trigger an asynchronous invocation, at most `concurrency` at once;
    one Lambda throttles is retried after a back-off (1 s doubling to 300 s, full jitter)."""
    slots = threading.Semaphore(shape.concurrency)
    rng = random.Random(shape.seed + 2)
    rng_lock = threading.Lock()
    handler = observed.counted(app.lambda_handler)
    sent: dict[str, float] = {}

    def deliver(event: dict[str, Any]) -> None:
        delay = 1.0
        while not slots.acquire(blocking=False):
            with rng_lock:
                wait = rng.uniform(0, delay)
            time.sleep(wait)
            delay = min(300.0, delay * 2)
        try:
            handler(event, LocalLambdaContext(900))
        except Exception:  # noqa: S110 - Lambda's retries of a failed event are not modelled
            pass
        finally:
            slots.release()

    template = Template.load()
    source = str(template.document["Parameters"]["EventSource"]["Default"])
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


def run_storm(shape: StormShape, *, baseline: bool) -> StormResult:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    limit = RateLimit(shape.limit_per_minute, 60.0)
    simulator = PleoSimulator(rate_limit_per_credential=limit)
    companies = build_companies(shape, simulator)
    overrides = {
        **QUIET,
        "PLEO_PAGE_SIZE": str(shape.page_size),
    }
    if shape.slice_seconds is not None:
        overrides["ADMISSION_SLICE_SECONDS"] = str(shape.slice_seconds)
    if baseline:
        overrides["RATE_BUDGET_TABLE_NAME"] = ""  # each process paces itself, as before
    observed = Observed()
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with (
        serve(simulator) as url,
        local_stack(url, overrides=overrides, stack=f"bench-fleet-{uuid.uuid4().hex[:6]}") as aws,
        LOG.open("w", encoding="utf-8") as log,
    ):
        register_tenants(aws, shape, companies)
        app: Any = importlib.import_module("app")
        observed.watch(app)
        AwsCalls(shape.aws_latency).install(existing=True)
        order = trigger_order(shape, companies)
        handler = observed.counted(app.lambda_handler)
        with drained_scope_queue(aws):
            if baseline:
                with route_lambda(handler, 900, events_in_background=True):
                    started = time.monotonic()
                    sent = invoke_as_before(app, order, shape, observed)
                    finished = wait_for_jobs(observed, order, shape.timeout_seconds)
            else:
                with serve_function(
                    aws, handler, 900, log, admission_concurrency=shape.concurrency
                ):
                    started = time.monotonic()
                    sent = put_triggers(aws, order)
                    finished = wait_for_jobs(observed, order, shape.timeout_seconds)
        store_calls = 0
        limiter = app.app.parts().rate_limiter
        if limiter is not None:
            store_calls = limiter.store.calls.calls
    return measure(
        shape, companies, simulator, observed, sent, started, finished, store_calls, baseline
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
    simulator: PleoSimulator,
    observed: Observed,
    sent: dict[str, float],
    started: float,
    finished: float,
    store_calls: int,
    baseline: bool,
) -> StormResult:
    reports = {r.credential: r for r in simulator.meter.report()}
    sixth = shape.limit_per_minute / 6
    ratios, requests = [], 0
    for company in companies:
        header = "Basic " + base64.b64encode(f"{company.api_key}:".encode()).decode()
        report = reports.get(credential_of({"authorization": header}))
        if report is not None:
            ratios.append(report.most_in_10s / sixth)
            requests += report.requests
    small = [
        observed.done[j.id] - sent[j.id]
        for c in companies
        if c.kind == "small"
        for j in c.jobs
        if j.id in observed.done
    ]
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
        small_p95=percentile(small, 0.95) if not unfinished else float("inf"),
        ddb_per_request=store_calls / requests if requests else 0.0,
        requests=requests,
        unfinished=unfinished,
        peak_invocations=observed.peak,
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
        SECTION.write(table(results, shape, command))
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
