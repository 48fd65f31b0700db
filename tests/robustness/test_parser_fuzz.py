"""Arbitrary JSON into the event parser and the page parser: a result or a typed error,
never anything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pleo_scope.errors import InvalidEvent, MalformedResponse, ScopeError
from pleo_scope.events import ScopeRequest, parse_event
from pleo_scope.models import ItemPage, parse_page

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
            {}, optional={"runId": st.integers(-2, 3) | json_values}
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
                "endCursor": st.text(max_size=6) | json_values,
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
