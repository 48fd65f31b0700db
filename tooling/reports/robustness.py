"""The robustness table: every crash point, API storm, AWS fault and bad-input class, run on
the embedded defaults, counting items lost and duplicated on the queue.

    python -m tooling.reports.robustness [--full] [--write-docs]

The light matrix also runs in the tests (tests/robustness/test_matrix.py); `--full` runs
every crash point of a larger job and more runs of each storm.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import h11
import httpx
from botocore.exceptions import ClientError
from moto.sqs import models as moto_sqs_models

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import MAX_WAIT_SECONDS, JobRef
from pleo_scope.credentials import Credential, parse_secret
from pleo_scope.errors import (
    ConfigurationError,
    InvalidEvent,
    InvalidSecret,
    MalformedResponse,
    ScopeError,
    TransientPleoError,
)
from pleo_scope.events import parse_event
from pleo_scope.models import parse_page
from pleo_scope.pleo_client import ClientSettings, PleoClient, RetryPolicy
from pleo_scope.ports import (
    NoObserver,
    OutgoingMessage,
    RetryDeferred,
    StepObserver,
    UnitRecord,
    WalkState,
)
from pleo_scope.scope import ScopeBuilder
from pleo_scope.settings import Settings
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.jobs import make_item
from tooling.pleo_sim.transport import in_memory_transport
from tooling.reports.docs_writer import DocSection
from tooling.testkit.harness import Stack, open_stack, reference_scope

SECTION = DocSection("robustness.md", "robustness-table")
# page_fetched: fetched, not archived; page_written: archived, not checkpointed.
STEPS = ("job_checked", "page_fetched", "page_written", "checkpoint_written", "scope_written",
         "units_planned", "batch_sent", "ledger_written")  # fmt: skip
PUBLISH_STEPS = STEPS[STEPS.index("scope_written") :]
UNIT_SIZES = (100, 1)


CRASH_SEED = "crash-points"


class InjectedCrash(Exception):
    """A crash injected through the test seam (the service's step observer)."""


@dataclass
class Row:
    category: str
    case: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_scope: int = 0
    """Runs whose scope.jsonl differs from the reference scope."""
    out_of_order: int = 0
    """Runs whose queue holds every item once, but not in scope order."""
    notes: Counter[str] = field(default_factory=Counter)
    max_requests: int = 0
    """Storms: the most requests Pleo received for one run (a 45-item job is 5 pages)."""
    unit_size: int = 100

    def outcome(self) -> str:
        parts = [f"{name} x{count}" for name, count in sorted(self.notes.items())]
        if self.max_requests:
            parts.append(f"at most {self.max_requests} requests to Pleo")
        return ", ".join(parts) or "completed first time"


class CrashAt:
    def __init__(self, step: str, occurrence: int) -> None:
        self.step, self.remaining = step, occurrence

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == self.step:
            self.remaining -= 1
            if self.remaining == 0:
                raise InjectedCrash(f"{step} #{number}")


def invoke_crashing(stack: Stack, event: dict[str, Any], step: str, occurrence: int) -> None:
    """Invoke with a crash at the `occurrence`th `step` (if the invocation gets that far);
    the crash is what a killed invocation leaves, so it is not raised."""
    with stack.app.app.injected(observer=CrashAt(step, occurrence)), suppress(InjectedCrash):
        stack.invoke(event)


class StepCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def on_step(self, step: str, job_id: str, number: int) -> None:
        self.counts[step] += 1


def settle(stack: Stack, job: SimJob, row: Row, expected: bytes | None = None) -> None:
    """Count what the queue holds for the job against the scope it should have."""
    expected = stack.expected_scope(job) if expected is None else expected
    lines = [json.loads(line) for line in expected.splitlines()]
    want = [item["accountingEntryId"] for item in lines]
    units = [m for m in stack.drain_queue() if m["jobId"] == job.id]
    got = [item["accountingEntryId"] for unit in units for item in unit["items"]]
    row.runs += 1
    row.lost += len(set(want) - set(got))
    row.duplicated += len(got) - len(set(got))
    if stack.scope_of(job.id) != expected:
        row.wrong_scope += 1
    if sorted(got) == sorted(want) and got != want:
        row.out_of_order += 1


@contextmanager
def unit_size(stack: Stack, size: int) -> Iterator[None]:
    """The handler publishes units of `size` meanwhile."""
    app = stack.app.app
    with app.injected(settings=replace(app.service.settings, unit_size=size)):
        yield


def run_until_done(
    stack: Stack, job: SimJob, row: Row, observer: StepObserver, retry_delay: float = 0.0
) -> None:
    """Invoke; after a failure (noted by its type), invoke again as a retry would."""
    with ExitStack() as first_attempt:
        first_attempt.enter_context(stack.app.app.injected(observer=observer))
        for _ in range(5):
            try:
                if stack.invoke({"jobId": job.id})["done"]:
                    return
            except Exception as error:  # the row notes what surfaced
                row.notes[type(error).__name__] += 1
            first_attempt.close()  # the retries run without the observer
            time.sleep(retry_delay)
    row.notes["not done after 5 attempts"] += 1


# -- crash points ----------------------------------------------------------------------------


def crash_rows(stack: Stack, items: int, every: bool) -> list[Row]:
    """Every step with units of 100; with units of 1, every step in the full matrix and the
    publish steps in the light one (a crash in the walk does not depend on the unit size)."""
    rows = []
    for size in UNIT_SIZES:
        steps = STEPS if every or size == UNIT_SIZES[0] else PUBLISH_STEPS
        with unit_size(stack, size):
            rows += _crash_rows(stack, items, every, size, steps)
    return rows


def _crash_rows(
    stack: Stack, items: int, every: bool, size: int, steps: Sequence[str]
) -> list[Row]:
    # One seed for the probe and every crashed job: the same statuses, the same steps.
    probe = stack.new_job(items=items, seed=CRASH_SEED)
    counter = StepCounter()
    run_until_done(stack, probe, Row("", ""), counter)
    stack.drain_queue()
    rows = []
    for past_window in (False, True):
        window = "rerun after SQS's 5-min dedup window" if past_window else "rerun within 5 min"
        for step in steps:
            total = counter.counts[step]
            occurrences = range(1, total + 1) if every else sorted({1, (total + 1) // 2, total})
            row = Row(
                f"crash ({window}), units of {size}",
                f"after {step.replace('_', ' ')}",
                unit_size=size,
            )
            original = moto_sqs_models.DEDUPLICATION_TIME_IN_SECONDS
            if past_window:
                moto_sqs_models.DEDUPLICATION_TIME_IN_SECONDS = 0
            try:
                for occurrence in occurrences:
                    job = stack.new_job(items=items, seed=CRASH_SEED)
                    run_until_done(stack, job, row, CrashAt(step, occurrence))
                    settle(stack, job, row)
            finally:
                moto_sqs_models.DEDUPLICATION_TIME_IN_SECONDS = original
            rows.append(row)
    return rows


# -- API storms ------------------------------------------------------------------------------


def storm_rows(stack: Stack, runs: int) -> list[Row]:
    now = format_datetime(datetime.now(UTC), usegmt=True)
    storms: list[tuple[str, Callable[[SimJob], Sequence[Fault]]]] = [
        ("30% 429, Retry-After in seconds", lambda j: [_share(429, 0.3, retry_after="0")]),
        ("30% 429, Retry-After as HTTP date", lambda j: [_share(429, 0.3, retry_after=now)]),
        ("30% 429, no Retry-After", lambda j: [_share(429, 0.3)]),
        ("20% 5xx", lambda j: [_share(503, 0.1), _share(500, 0.1)]),
        ("10% hangs past the read time-out", lambda j: [_hang(0.1)]),
        ("20% dropped connections", lambda j: [Fault("drop", probability=0.2)]),
        ("bodies that are not JSON, 20%", lambda j: [Fault("malformed", probability=0.2)]),
        ("items finished and appended mid-walk", _moving_items),
    ]  # fmt: skip
    rows = []
    for name, faults in storms:
        row = Row("API storm", name)
        for _ in range(runs):
            job = stack.new_job(items=45)
            stack.simulator.inject(job.id, *faults(job))
            run_until_done(stack, job, row, NoObserver())
            row.max_requests = max(row.max_requests, stack.simulator.request_count(job.id))
            settle(stack, job, row)
        rows.append(row)
    return rows


def _hang(probability: float) -> Fault:
    return Fault("hang", seconds=1.5, probability=probability)


def _share(status: int, probability: float, retry_after: str | None = None) -> Fault:
    return Fault("status", status=status, retry_after=retry_after, probability=probability)


def _moving_items(job: SimJob) -> Sequence[Fault]:
    late = [job.item_at(i)["accountingEntryId"] for i in range(40, 45)]
    appended = [make_item(job.id, f"ffffffff-0000-4000-8000-{n:012d}", "pending") for n in range(7)]
    return [
        Fault("set_status", frozenset({2}), statuses=dict.fromkeys(late, "successful")),
        Fault("append", frozenset({3}), items=appended),
    ]


# -- AWS faults ------------------------------------------------------------------------------


def aws_rows(stack: Stack, runs: int) -> list[Row]:
    service = stack.app.app.service
    rng = random.Random(7)
    rows = []

    class RefusingQueue:
        """SQS refusing a share of each batch's entries (a partial SendMessageBatch)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
            refused = [m for m in messages if rng.random() < 0.3]
            kept = [m for m in messages if m not in refused]
            return refused + (self.inner.send_batch(kept) if kept else [])

    class ThrottledLedger:
        """The ledger's transaction throttled (after the batch it records was sent)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def record(
            self, state: WalkState, units: Sequence[UnitRecord], published: int, items: int
        ) -> WalkState:
            if rng.random() < 0.2:
                raise ClientError(
                    {"Error": {"Code": "ProvisionedThroughputExceededException"}},
                    "TransactWriteItems",
                )
            result: WalkState = self.inner.record(state, units, published, items)
            return result

    class FailingArchive:
        def __init__(self, inner: Any) -> None:
            self.inner, self.failed = inner, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def put_page(self, job_id: str, run_id: int, number: int, raw: bytes) -> None:
            if number == 2 and not self.failed:
                self.failed = True
                raise ClientError({"Error": {"Code": "InternalError"}}, "PutObject")
            self.inner.put_page(job_id, run_id, number, raw)

    faults: list[tuple[str, str, Callable[[], Any], int]] = [
        (f"SendMessageBatch refusing 30% of entries, units of {size}", "queue",
         lambda: RefusingQueue(service.queue), size) for size in UNIT_SIZES
    ] + [
        (f"ledger writes throttled 20%, units of {size}", "ledger",
         lambda: ThrottledLedger(service.ledger), size) for size in UNIT_SIZES
    ] + [
        ("S3 page write failing once", "archive", lambda: FailingArchive(service.archive), 100)
    ]  # fmt: skip
    for name, port, wrapper, size in faults:
        row = Row("AWS fault", name, unit_size=size)
        for _ in range(runs):
            with stack.app.app.injected(**{port: wrapper()}):
                job = stack.new_job(items=45)
                with unit_size(stack, size):
                    run_until_done(stack, job, row, NoObserver())
            settle(stack, job, row)
        rows.append(row)

    row = Row("AWS fault", "lease held by another invocation (conditional check)")
    for _ in range(runs):
        job = stack.new_job(items=45)
        # Another invocation holds the job for 1 s (and then dies without releasing it).
        stack.app.app.checkpoints.begin(JobRef(job.id), "another-invocation", 1.0, None)
        run_until_done(stack, job, row, NoObserver(), retry_delay=1.5)
        settle(stack, job, row)
    rows.append(row)
    return rows


# -- bad input -------------------------------------------------------------------------------


def bad_input_rows(runs: int) -> list[Row]:
    """Each parser of outside values, fed `runs` hostile values: every run must end in a
    result or the parser's typed error (an untyped exception counts as a wrong scope)."""
    rng = random.Random(11)
    job = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"
    event = {"version": "0", "detail-type": "Export Job Claimed", "source": "pleo.export-jobs",
             "id": "e", "account": "1", "time": "2026-11-23T12:00:00Z", "region": "eu-west-1",
             "resources": [], "detail": {"jobId": job}}  # fmt: skip
    page = {"data": [make_item(job, "a", "pending")],
            "pagination": {"hasNextPage": True, "endCursor": "c"}}  # fmt: skip
    cases: list[tuple[str, Callable[[], str], type[ScopeError]]] = [
        ("event parser, mutated events",
         lambda: _parsed(parse_event(_mutate(event, rng))), InvalidEvent),
        ("page parser, mutated pages",
         lambda: _parsed(parse_page(_mutate(page, rng), job)), MalformedResponse),
        ("event job ids in random letter case",
         lambda: _same_job(event, job, rng), InvalidEvent),
        ("item text: lone surrogates, control characters, ids up to 4 KB",
         lambda: _hostile_scope(job, rng), MalformedResponse),
        ("Retry-After: inf, nan, 1e999, HTTP dates, garbage",
         lambda: _retry_after(job, rng), TransientPleoError),
        ("secret values: whitespace, control characters, non-ASCII",
         lambda: _secret(rng), InvalidSecret),
        ("settings: nan, inf, 1e999, negative, margin at or above the time-out",
         lambda: _settings(rng), ConfigurationError),
    ]  # fmt: skip
    rows = []
    for name, run, typed in cases:
        row = Row("bad input", name)
        for _ in range(runs):
            row.runs += 1
            try:
                row.notes[run()] += 1
            except typed as error:
                row.notes[type(error).__name__] += 1
            except _WrongResult as wrong:
                row.notes[f"WRONG: {wrong}"] += 1
                row.wrong_scope += 1
            except ScopeError as error:
                row.notes[f"other typed: {type(error).__name__}"] += 1
            except Exception as error:  # would be a defect: counted as such
                row.notes[f"UNHANDLED {type(error).__name__}"] += 1
                row.wrong_scope += 1
        rows.append(row)
    return rows


class _WrongResult(Exception):
    """A run ended without an error, but not in the result the contract gives."""


def _parsed(_: object) -> str:
    return "parsed"


def _same_job(event: dict[str, Any], job: str, rng: random.Random) -> str:
    cased = "".join(c.upper() if rng.random() < 0.5 else c for c in job)
    shape = rng.choice(["eventbridge", "loop", "direct"])
    document = {"eventbridge": {**event, "detail": {"jobId": cased}},
                "loop": {"jobId": cased, "continuation": {"runId": 1, "handOver": 1}},
                "direct": {"jobId": cased}}[shape]  # fmt: skip
    if parse_event(document).job_id != job:
        raise _WrongResult("job id not lower-cased")
    return "parsed, lower-cased"


_HOSTILE_CHARS: list[Callable[[random.Random], str]] = [
    lambda rng: chr(rng.randint(0xD800, 0xDFFF)),  # a lone surrogate
    lambda rng: chr(rng.choice([*range(0x20), 0x7F])),  # a control character
    lambda rng: rng.choice('\u2028\u2029\ufeff\u200b"\\/'),
    lambda rng: chr(rng.randint(0xA0, 0x2FFFF)),  # anything else, astral included
    lambda rng: chr(rng.randint(0x20, 0x7E)),
]


def _hostile_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_HOSTILE_CHARS)(rng) for _ in range(length))


def _hostile_scope(job: str, rng: random.Random) -> str:
    """Pages of hostile items, as Pleo's bytes (escaped, or raw with a surrogate's CESU-8
    bytes): the scope built as pages arrive and the one rebuilt from the archived raw pages
    must be the reference's bytes, UTF-8 throughout."""
    pages = []
    for _ in range(rng.randint(1, 3)):
        items = []
        for _ in range(rng.randint(0, 5)):
            length = rng.choice([rng.randint(1, 12), rng.randint(1000, 4000)])
            entry_id = _hostile_text(rng, length)
            status = rng.choice(["pending", "in_progress", "failed", _hostile_text(rng, 3)])
            items.append(make_item(job, entry_id, status, failureReason=_hostile_text(rng, 8)))
        pages.append(items)
    ascii_only = rng.random() < 0.5
    raws = [
        json.dumps(
            {"data": items, "pagination": {"hasNextPage": False}}, ensure_ascii=ascii_only
        ).encode("utf-8", "surrogatepass")
        for items in pages
    ]
    live, rebuilt, observed = ScopeBuilder(), ScopeBuilder(), []
    for raw in raws:
        page = parse_page(httpx.Response(200, content=raw).json(), job, raw)
        live.add_items(page.items)
        observed += page.items  # as JSON reads them: an escaped high+low pair is one character
        rebuilt.add_items(parse_page(json.loads(raw), job).items)
    scope_logger = logging.getLogger("pleo_scope.scope")
    level = scope_logger.level
    scope_logger.setLevel(logging.ERROR)  # unknown statuses are warned about, by design
    try:
        jsonl, again = live.build().jsonl, rebuilt.build().jsonl
    finally:
        scope_logger.setLevel(level)
    if jsonl != again:
        raise _WrongResult("rebuilt scope differs")
    if jsonl != reference_scope(observed):
        raise _WrongResult("scope differs from the reference")
    if not reads_back(jsonl, observed):
        raise _WrongResult("a line does not read back as its item")
    jsonl.decode("utf-8")
    return "scope byte-identical live and rebuilt"


def reads_back(jsonl: bytes, observed: list[dict[str, Any]]) -> bool:
    """Each line reads back as its item does in JSON (where an escaped high+low surrogate
    pair is one character), in scope order."""
    latest = {item["accountingEntryId"]: item for item in observed}
    kept = sorted(i for i, item in latest.items() if item["status"] in ("pending", "in_progress"))
    lines = jsonl.splitlines()
    return len(lines) == len(kept) and all(
        json.loads(line) == json.loads(json.dumps(latest[entry_id]))
        for entry_id, line in zip(kept, lines, strict=True)
    )


_RETRY_AFTERS = ["inf", "Infinity", "-inf", "1e999", "nan", "NaN", "1e308", "9" * 40, "0", "-3",
                 "7", "1.5", "soon", "", " ", "0x10", "Mon, 32 Nov 2026 12:00:00 GMT"]  # fmt: skip


def _retry_after(job: str, rng: random.Random) -> str:
    """One 429 with the value, then the job: the client retries within the cap, or defers
    with a finite wait; it never sleeps longer than the cap."""
    choice = rng.random()
    if choice < 0.6:
        value = rng.choice(_RETRY_AFTERS)
    elif choice < 0.8:
        moment = datetime.now(UTC) + timedelta(seconds=rng.uniform(-1e5, 1e9))
        value = format_datetime(moment, usegmt=True)
    else:
        value = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 12)))
    simulator = PleoSimulator()
    simulator.add_job(SimJob(job, generated_items=1))
    simulator.inject(job, Fault("status", frozenset({1}), status=429, retry_after=value,
                                endpoint="job"))  # fmt: skip
    slept: list[float] = []
    client = PleoClient(
        ClientSettings("http://pleo.invalid", retry=RetryPolicy(max_attempts=2)),
        CredentialAuth.of(Credential("apiKey", "sim-api-key")),
        clock=_SleeplessClock(slept),
        transport=in_memory_transport(simulator),
    )
    try:
        client.get_job(JobRef(job), Budget.unbounded(SystemClock()))
    except RetryDeferred as deferred:
        if not 0.0 <= deferred.wait_seconds <= MAX_WAIT_SECONDS:
            raise _WrongResult("deferral wait out of bounds") from None
        return "RetryDeferred"
    if any(not 0.0 <= seconds <= 60.0 for seconds in slept):
        raise _WrongResult("slept past the cap")
    return "retried within the cap"


class _SleeplessClock(SystemClock):
    def __init__(self, slept: list[float]) -> None:
        self.slept = slept

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def _secret(rng: random.Random) -> str:
    """A secret's value with hostile characters around or inside: accepted stripped (and a
    header h11 sends), or InvalidSecret without the value in its text."""
    value = "k" + _hostile_text(rng, rng.randint(0, 4)) + "CANARY"
    value = rng.choice(["", " ", "\n", "\t", "\r\n", "\u00a0"]) + value
    value += rng.choice(["", " ", "\n", "\r\n", "\u3000"])
    kind = rng.choice(["apiKey", "accessToken"])
    try:
        credential = parse_secret(json.dumps({kind: value}), "pleo/api")
    except InvalidSecret as error:
        if "CANARY" in str(error):
            raise _WrongResult("the value is in the error") from None
        raise
    if credential.value != value.strip():
        raise _WrongResult("not stripped")
    header = credential.authorization_header()
    h11.Request(method="GET", target="/", headers=[("Host", "x"), ("Authorization", header)])
    return "accepted, stripped"


_SETTINGS_ENV = {
    "PLEO_API_BASE_URL": "https://external.pleo.io", "PLEO_API_SECRET_ARN": "arn",
    "SCOPE_TABLE_NAME": "t", "IDEMPOTENCY_TABLE_NAME": "i", "SCOPE_BUCKET_NAME": "b",
    "SCOPE_QUEUE_URL": "q", "STATE_MACHINE_ARN": "s",
}  # fmt: skip
_NUMERIC = ["SAFETY_MARGIN_SECONDS", "PLEO_CONNECT_TIMEOUT_SECONDS", "PLEO_READ_TIMEOUT_SECONDS",
            "PLEO_MAX_RETRY_AFTER_SECONDS", "PLEO_PAGE_SIZE", "PLEO_MAX_ATTEMPTS",
            "PLEO_MAX_PAGES"]  # fmt: skip


def _settings(rng: random.Random) -> str:
    """A numeric variable set to a hostile value, for a function with a 900 s time-out."""
    name = rng.choice(_NUMERIC)
    value = rng.choice(["nan", "inf", "-inf", "Infinity", "1e999", "-1", "0", "abc", "",
                        "20000", "900", "899", "1.5", "5"])  # fmt: skip
    settings = Settings.from_env({**_SETTINGS_ENV, name: value})
    settings.require_time_to_work(900.0)
    for number in (settings.safety_margin_seconds, settings.pleo.read_timeout):
        if not math.isfinite(number):
            raise _WrongResult(f"{name} not finite")
    return "accepted"


def _as_json_reads(job: SimJob) -> bytes:
    """The reference scope of the job's items as JSON reads them back from the simulator (an
    escaped high+low surrogate pair is one character there)."""
    return reference_scope([json.loads(json.dumps(job.item_at(i))) for i in range(job.item_count)])


def hostile_job_rows(stack: Stack, runs: int) -> list[Row]:
    """Hostile input end to end, counted on the queue like every other row."""
    rng = random.Random(13)
    rows = []
    row = Row("bad input", "job with hostile item text, crash after a checkpoint and rerun")
    for _ in range(runs):
        job = stack.new_job(items=20)
        for n in range(6):
            text = _hostile_text(rng, 12)
            job.items.append(make_item(job.id, f"00000000-0000-4000-8000-{n:012d}", "pending",
                                       failureReason=text, note={text: n}))  # fmt: skip
        # The rerun rebuilds the scope from the archived raw pages.
        run_until_done(stack, job, row, CrashAt("checkpoint_written", 2))
        settle(stack, job, row, _as_json_reads(job))
    rows.append(row)
    row = Row("bad input", "accountingEntryIds of 3-4 KB and with lone surrogates, rerun later")
    for _ in range(runs):
        job = stack.new_job(items=20)
        for n in range(4):
            entry_id = f"{n}" + _hostile_text(rng, 3) + "x" * rng.randint(3000, 4000)
            job.items.append(make_item(job.id, entry_id, "pending"))
        run_until_done(stack, job, row, NoObserver())
        stack.forget_idempotency()  # past the window: the rerun must enqueue nothing again
        run_until_done(stack, job, row, NoObserver())
        settle(stack, job, row, _as_json_reads(job))
    rows.append(row)
    row = Row("bad input", "same job re-triggered in upper and mixed case within the window")
    for _ in range(runs):
        job = stack.new_job(items=45)
        for job_id in (job.id, job.id.upper(), job.id[:18].upper() + job.id[18:]):
            try:
                row.notes["done" if stack.invoke({"jobId": job_id})["done"] else "not done"] += 1
            except Exception as error:  # the row notes what surfaced
                row.notes[type(error).__name__] += 1
        settle(stack, job, row)
    rows.append(row)
    return rows


def _mutate(document: Any, rng: random.Random) -> Any:
    if isinstance(document, dict) and document and rng.random() < 0.8:
        copy = dict(document)
        key = rng.choice(list(copy))
        choice = rng.random()
        if choice < 0.3:
            del copy[key]
        elif choice < 0.6:
            copy[key] = rng.choice([None, 0, -1, "", "x", [], {}, True, 1.5, "Ω" * 3])
        else:
            copy[key] = _mutate(copy[key], rng)
        return copy
    if isinstance(document, list) and document:
        return [_mutate(value, rng) for value in document]
    return rng.choice([None, 0, "", [], {}, "8eb648ab", document])


# -- the table ---------------------------------------------------------------------------------


def run_matrix(stack: Stack, *, full: bool) -> list[Row]:
    rows = crash_rows(stack, items=95 if full else 30, every=full)
    rows += storm_rows(stack, runs=5 if full else 1)
    rows += aws_rows(stack, runs=5 if full else 1)
    rows += bad_input_rows(runs=2000 if full else 200)
    rows += hostile_job_rows(stack, runs=5 if full else 1)
    return rows


def markdown(rows: list[Row], full: bool) -> str:
    lines = [
        f"Produced by `python -m tooling.reports.robustness{' --full' if full else ''}`"
        " (see `make robustness`); do not edit by hand.",
        "",
        "| category | case | runs | items lost | items duplicated | wrong scope | queue out of"
        " order | what surfaced |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.category} | {r.case} | {r.runs} | {r.lost} | {r.duplicated} |"
            f" {r.wrong_scope} | {r.out_of_order} | {r.outcome()} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--write-docs", action="store_true", help="into docs/robustness.md")
    args = parser.parse_args()
    if args.write_docs and not args.full:
        # The docs' table is the full matrix; the light one would silently replace it.
        parser.error("--write-docs needs --full (docs/robustness.md holds the full matrix)")
    started = time.perf_counter()
    with open_stack(quiet=True) as stack:
        rows = run_matrix(stack, full=args.full)
    table = markdown(rows, args.full)
    print(table)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.write_docs:
        SECTION.write(table)


if __name__ == "__main__":
    main()
