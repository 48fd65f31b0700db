"""The page parser on values that are valid JSON but cannot be used as they are."""

from __future__ import annotations

import json

import pytest

from pleo_scope.errors import MalformedResponse
from pleo_scope.models import parse_page

JOB = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"


def page(cursor: str, has_next: bool) -> object:
    raw = json.dumps({"data": [], "pagination": {"hasNextPage": has_next, "endCursor": cursor}})
    return json.loads(raw)


def test_a_next_cursor_with_a_lone_surrogate_is_malformed_response() -> None:
    # It could not go back into the next request's URL (httpx: UnicodeEncodeError).
    with pytest.raises(MalformedResponse, match=r"`pagination.endCursor` is not valid Unicode"):
        parse_page(page("abc\ud83d", has_next=True), JOB)


def test_a_last_page_cursor_is_not_followed_and_not_checked() -> None:
    assert not parse_page(page("abc\ud83d", has_next=False), JOB).has_next_page


def test_a_non_ascii_cursor_is_followed() -> None:
    assert parse_page(page("cürsor-😀", has_next=True), JOB).end_cursor == "cürsor-😀"
