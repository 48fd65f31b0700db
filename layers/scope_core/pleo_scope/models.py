"""The slice of Pleo's Export API data this project reads, parsed strictly where the contract
promises a field and leniently everywhere else (unknown fields and enum values pass through)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pleo_scope.errors import MalformedResponse

CLAIMED = "in_progress"
IN_SCOPE_STATUSES = frozenset({"pending", "in_progress"})
KNOWN_ITEM_STATUSES = frozenset({"pending", "in_progress", "successful", "failed", "abandoned"})

type JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawNumber:
    """A JSON number that a double cannot hold (it would become an infinity, like `1e400`, or
    zero though its digits are not, like `2.5e-400`), or an integer past Python's conversion
    limit: kept as the exact text Pleo sent, and written back as that text (`scope.py`)."""

    text: str


class NotJson(ValueError):
    """A body holding `NaN`, `Infinity` or `-Infinity`: Python reads them, JSON has none."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"holds the literal {literal}, which is not JSON")
        self.literal = literal


def decode_json(raw: bytes | str) -> Any:
    """Strict JSON, every number carried: what the walk reads from Pleo and from the archive.
    Integers are read by json's own fast path unless one is past int()'s limit."""
    try:
        return json.loads(raw, parse_float=_number, parse_constant=_constant)
    except NotJson:
        raise
    except ValueError:
        return json.loads(raw, parse_float=_number, parse_int=_integer, parse_constant=_constant)


def _number(text: str) -> float | RawNumber:
    value = float(text)
    if math.isinf(value):
        return RawNumber(text)
    if value == 0.0 and any(c in "123456789" for c in text.lower().partition("e")[0]):
        return RawNumber(text)  # underflow: not the zero that was sent
    return value


def _integer(text: str) -> int | RawNumber:
    try:
        return int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return RawNumber(text)


def _constant(literal: str) -> Any:
    raise NotJson(literal)


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    status: str
    number_of_items: int | None
    raw: JsonObject


@dataclass(frozen=True, slots=True)
class ItemPage:
    """One page of `GET /v3/export-jobs/{jobId}/items`; items are kept exactly as sent."""

    items: list[JsonObject]
    has_next_page: bool
    end_cursor: str | None
    total: int | None
    raw: bytes = b""
    """The response body as received, kept for the audit copy in S3."""


def parse_job(body: object, job_id: str) -> ExportJob:
    data = _envelope(body, "data", job_id)
    if not isinstance(data, dict):
        raise MalformedResponse(f"export job {job_id}: `data` is not an object")
    status = data.get("status")
    if not isinstance(status, str):
        raise MalformedResponse(f"export job {job_id}: `data.status` is missing or not a string")
    count = data.get("numberOfItems")
    return ExportJob(
        id=str(data.get("id", job_id)),
        status=status,
        number_of_items=count if isinstance(count, int) else None,
        raw=data,
    )


def parse_page(body: object, job_id: str, raw: bytes = b"") -> ItemPage:
    data = _envelope(body, "data", job_id)
    pagination = _envelope(body, "pagination", job_id)
    if not isinstance(data, list):
        raise MalformedResponse(f"items of export job {job_id}: `data` is not a list")
    if not isinstance(pagination, dict):
        raise MalformedResponse(f"items of export job {job_id}: `pagination` is not an object")
    has_next = pagination.get("hasNextPage")
    if not isinstance(has_next, bool):
        raise MalformedResponse(
            f"items of export job {job_id}: `pagination.hasNextPage` is missing or not a boolean"
        )
    cursor = pagination.get("endCursor")
    if has_next and isinstance(cursor, str) and not _sendable(cursor):
        # Valid JSON, but a lone surrogate cannot go back into the next request's URL.
        raise MalformedResponse(
            f"items of export job {job_id}: `pagination.endCursor` is not valid Unicode text"
        )
    total = pagination.get("total")
    for index, item in enumerate(data):
        _check_item(item, index, job_id)
    return ItemPage(
        items=data,
        has_next_page=has_next,
        end_cursor=cursor if isinstance(cursor, str) else None,
        total=total if isinstance(total, int) else None,
        raw=raw,
    )


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _envelope(body: object, field: str, job_id: str) -> object:
    if not isinstance(body, dict) or field not in body:
        raise MalformedResponse(f"export job {job_id}: response has no `{field}`")
    return body[field]


def _check_item(item: object, index: int, job_id: str) -> None:
    if not isinstance(item, dict):
        raise MalformedResponse(f"items of export job {job_id}: item {index} is not an object")
    entry_id = item.get("accountingEntryId")
    if not isinstance(entry_id, str) or not entry_id:
        raise MalformedResponse(
            f"items of export job {job_id}: item {index} has no string `accountingEntryId`"
        )
    if not isinstance(item.get("status"), str):
        raise MalformedResponse(
            f"items of export job {job_id}: item {entry_id} has no string `status`"
        )
