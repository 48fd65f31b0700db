"""Arbitrary input into every parser of outside values: events (job ids in any case), pages
(any JSON text, lone surrogates, control characters, very long ids), Retry-After, secret
values. Each example ends in a result or a typed error, never anything else."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import h11
import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from pleo_scope.clock import Budget
from pleo_scope.contract import MAX_WAIT_SECONDS, JobRef
from pleo_scope.credentials import parse_secret
from pleo_scope.errors import InvalidEvent, InvalidSecret, MalformedResponse, ScopeError
from pleo_scope.events import ScopeRequest, parse_event
from pleo_scope.models import ItemPage, parse_page
from pleo_scope.pleo_client import parse_retry_after
from pleo_scope.ports import RetryDeferred
from pleo_scope.scope import ScopeBuilder
from tests.support import START, FakeClock, make_client, reference_scope
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.transport import in_memory_transport
from tooling.reports.robustness import reads_back

JOB = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Documents that look like the real shapes, with any field replaced by anything.
event_like = st.fixed_dictionaries(
    {},
    optional={
        "jobId": st.just(JOB) | json_values,
        "detail-type": st.just("Export Job Claimed") | json_values,
        "detail": st.fixed_dictionaries({}, optional={"jobId": st.just(JOB) | json_values}),
        "continuation": st.fixed_dictionaries(
            {},
            optional={
                "runId": st.integers(-2, 3) | json_values,
                "handOver": st.integers(-2, 3) | json_values,
            },
        ),
        "source": json_values,
    },
)
page_like = st.fixed_dictionaries(
    {},
    optional={
        "data": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "accountingEntryId": st.text(max_size=6) | json_values,
                    "status": st.sampled_from(["pending", "failed"]) | json_values,
                },
            )
            | json_values,
            max_size=4,
        )
        | json_values,
        "pagination": st.fixed_dictionaries(
            {},
            optional={
                "hasNextPage": st.booleans() | json_values,
                "endCursor": st.text(max_size=6)
                | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2)
                | json_values,
            },
        )
        | json_values,
    },
)


def attempt[T](call: Callable[[], T]) -> tuple[T | None, ScopeError | None]:
    """The call's value, or the project's own error it raised (anything else propagates)."""
    try:
        return call(), None
    except ScopeError as error:
        return None, error


@settings(max_examples=400, deadline=None)
@given(event=json_values | event_like)
def test_any_event_is_a_request_or_invalid_event(event: Any) -> None:
    request, error = attempt(lambda: parse_event(event))
    if error is not None:
        assert isinstance(error, InvalidEvent)
        assert str(error)
    else:
        assert isinstance(request, ScopeRequest)
        assert request.job_id == JOB


@settings(max_examples=400, deadline=None)
@given(body=json_values | page_like)
def test_any_body_is_a_page_or_malformed_response(body: Any) -> None:
    page, error = attempt(lambda: parse_page(body, JOB))
    if error is not None:
        assert isinstance(error, MalformedResponse)
        assert JOB in str(error)
        return
    assert isinstance(page, ItemPage)
    for item in page.items:
        assert isinstance(item["accountingEntryId"], str)
        assert isinstance(item["status"], str)
    if page.has_next_page and page.end_cursor is not None:
        page.end_cursor.encode("utf-8")  # it can go back into the next request's URL


# --- job ids in any letter case ------------------------------------------------------------


@st.composite
def any_case(draw: st.DrawFn, text: str = JOB) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


EVENTBRIDGE: dict[str, Any] = {
    "version": "0", "id": "e", "source": "pleo.export-jobs", "account": "1",
    "time": "2026-11-23T12:00:00Z", "region": "eu-west-1", "resources": [],
    "detail-type": "Export Job Claimed",
}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(job_id=any_case(), shape=st.sampled_from(["eventbridge", "loop", "direct"]))
def test_a_job_id_in_any_case_is_the_same_job_in_lower_case(job_id: str, shape: str) -> None:
    shapes: dict[str, dict[str, Any]] = {
        "eventbridge": {**EVENTBRIDGE, "detail": {"jobId": job_id}},
        "loop": {"jobId": job_id, "continuation": {"runId": 1, "handOver": 1}, "done": False},
        "direct": {"jobId": job_id},
    }
    event = shapes[shape]
    assert parse_event(event).job_id == JOB


# --- any JSON text in an item ends in the scope ----------------------------------------------

# Every code point, with lone surrogates and control characters drawn often (valid JSON as
# escapes; the default alphabet draws a surrogate about once in 400 characters).
any_char = (
    st.characters(codec=None, categories=None)
    | st.characters(categories=["Cs"])
    | st.characters(categories=["Cc", "Zl", "Zp"])
)
any_text = st.text(any_char, max_size=12)
long_id = st.builds(lambda char, n: char * n, any_char, st.integers(1000, 4000))
entry_ids = st.text(any_char, min_size=1, max_size=12) | long_id
items = st.lists(
    st.fixed_dictionaries(
        {
            "accountingEntryId": entry_ids,
            "status": st.sampled_from(["pending", "in_progress", "failed"]) | any_text,
        },
        optional={
            "failureReason": any_text,
            "note": st.dictionaries(any_text, any_text, max_size=2),
        },
    ),
    max_size=6,
)


def as_raw_page(page_items: list[Any], raw_surrogates: bool) -> bytes:
    """The page as Pleo's bytes: \\u escapes for what is not ASCII, or raw bytes (UTF-8, and a
    surrogate's CESU-8 bytes, which json.loads on bytes reads as the surrogate)."""
    document = {"data": page_items, "pagination": {"hasNextPage": False}}
    if raw_surrogates:
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(document).encode()


@settings(max_examples=300, deadline=None)
@given(pages=st.lists(items, min_size=1, max_size=3), raw_surrogates=st.booleans())
def test_any_item_text_ends_in_the_same_scope_live_and_rebuilt(
    pages: list[list[Any]], raw_surrogates: bool
) -> None:
    raws = [as_raw_page(page, raw_surrogates) for page in pages]
    live, observed = ScopeBuilder(), []  # as the client reads a response
    for raw in raws:
        page = parse_page(httpx.Response(200, content=raw).json(), JOB, raw)
        live.add_items(page.items)
        observed += page.items  # as JSON reads them: an escaped high+low pair is one character
    rebuilt = ScopeBuilder()  # as the rebuild reads the archived raw page
    for raw in raws:
        rebuilt.add_items(parse_page(json.loads(raw), JOB).items)
    jsonl = live.build().jsonl
    assert jsonl == rebuilt.build().jsonl
    assert jsonl == reference_scope(observed)
    jsonl.decode("utf-8")  # UTF-8 throughout, surrogates as escapes
    assert reads_back(jsonl, observed)  # each line is its item, as JSON reads it


# --- any Retry-After ---------------------------------------------------------------------------

http_dates = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda moment: format_datetime(moment, usegmt=True))
retry_after = (
    st.sampled_from(
        [
            "inf",
            "Infinity",
            "-inf",
            "1e999",
            "-1e999",
            "nan",
            "NaN",
            "1e308",
            "0",
            "-0",
            "1_0",
            "0x10",
            "  7  ",
            "",
            "Mon, 32 Nov 2026 12:00:00 GMT",
        ]
    )
    | st.floats().map(repr)
    | st.integers(-(10**30), 10**30).map(str)
    | http_dates
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
)


@settings(max_examples=300, deadline=None)
@given(value=st.none() | retry_after)
def test_any_retry_after_is_a_wait_or_none(value: str | None) -> None:
    wait = parse_retry_after(value, START)
    assert wait is None or wait == math.inf or 0.0 <= wait < math.inf
    try:
        number = float(value or "")
    except ValueError:
        return
    # Not a finite number: longer than any cap, never 0 (retry now) and never an error.
    assert wait == (max(0.0, number) if math.isfinite(number) else math.inf)


@settings(max_examples=150, deadline=None)
@given(value=retry_after)
def test_any_retry_after_ends_in_a_result_or_a_typed_error(value: str) -> None:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=3))
    simulator.inject(
        JOB, Fault("status", frozenset({1}), status=429, retry_after=value, endpoint="job")
    )
    clock = FakeClock()
    client = make_client(transport=in_memory_transport(simulator), clock=clock, max_attempts=2)
    job, error = attempt(lambda: client.get_job(JobRef(JOB), Budget.from_remaining(clock, 900.0)))
    if isinstance(error, RetryDeferred):
        assert 0.0 <= error.wait_seconds <= MAX_WAIT_SECONDS
        assert client.stats.retries == 0
    else:
        assert error is None, error
        assert job is not None
        assert client.stats.retries == 1
    assert all(0.0 <= slept <= 60.0 for slept in clock.sleeps)


# --- any secret value ----------------------------------------------------------------------------

CANARY = "CANARY"


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["apiKey", "accessToken"]), prefix=any_text, suffix=any_text)
def test_any_secret_value_is_a_valid_header_or_invalid_secret(
    kind: str, prefix: str, suffix: str
) -> None:
    value = prefix + CANARY + suffix
    credential, error = attempt(lambda: parse_secret(json.dumps({kind: value}), "pleo/api"))
    if error is not None:
        assert isinstance(error, InvalidSecret)
        assert "pleo/api" in str(error)
        assert CANARY not in str(error)
        return
    assert credential is not None
    assert credential.value == value.strip()
    # What h11 (httpx's HTTP/1.1) would send; it refuses anything a header cannot carry.
    h11.Request(
        method="GET",
        target="/",
        headers=[("Host", "pleo.invalid"), ("Authorization", credential.authorization_header())],
    )
