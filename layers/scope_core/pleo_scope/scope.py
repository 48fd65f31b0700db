"""The processing scope: a pure function of the pages, in the order they were fetched.

Rules (pleo-api.md, "The processing scope"): the later observation of an
`accountingEntryId` wins; keep `pending` and `in_progress`; order by `accountingEntryId`
ascending as the strings the API sent. The serialisation is fixed so that the same job
state always gives byte-identical `scope.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pleo_scope.models import (
    IN_SCOPE_STATUSES,
    KNOWN_ITEM_STATUSES,
    JsonObject,
    RawNumber,
    decode_json,
)

ORDERING = "accountingEntryId ASC"
SCHEMA_VERSION = 2
"""2 since contract v3: `companyId`, `runId` and `scopeKey` (the run's own scope.jsonl)."""

logger = logging.getLogger(__name__)


class _HoldsRawNumber(Exception):
    """Raised out of the fast encoder: the item needs the exact (slower) one."""


def _raw_number_found(value: object) -> object:
    if isinstance(value, RawNumber):
        raise _HoldsRawNumber
    raise TypeError(f"{type(value).__name__} is not JSON")


# allow_nan=False: a float infinity or NaN can never be written as `Infinity`/`NaN`.
_encode = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_raw_number_found,
).encode


def serialize_item(item: JsonObject) -> bytes:
    """Compact JSON, sorted keys, UTF-8 (no \\u escapes), one line with its newline.

    A lone UTF-16 surrogate (valid JSON, e.g. `"\\ud83d"`, but not encodable in UTF-8) can
    only stand inside a JSON string here, so `backslashreplace` writes it back as the same
    `\\udXXX` escape (lower-case hex): valid JSON for the same text, and the same bytes on every
    attempt and rebuild. Every other character costs nothing extra.

    A number a double cannot hold (`RawNumber`) is written as the text Pleo sent; only the
    items that hold one take the slower encoder that can write it.
    """
    try:
        text = _encode(item)
    except _HoldsRawNumber:
        text = _encode_exact(item)
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _encode_exact(value: object) -> str:
    """The same compact, sorted form as `_encode`, with every RawNumber as its text."""
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, dict):
        members = (f"{_encode(key)}:{_encode_exact(value[key])}" for key in sorted(value))
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode_exact(element) for element in value) + "]"
    return _encode(value)


@dataclass(frozen=True, slots=True)
class ScopeEntry:
    position: int
    accounting_entry_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Scope:
    jsonl: bytes
    item_count: int
    counts_by_status: dict[str, int]
    seen_counts_by_status: dict[str, int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jsonl).hexdigest()

    def entries(self) -> Iterator[ScopeEntry]:
        """The scope in order, re-read from the JSONL (no second copy held in memory)."""
        return iter_entries(self.jsonl)


def iter_entries(jsonl: bytes, start: int = 0) -> Iterator[ScopeEntry]:
    """Entries from position `start` on; the lines before it are skipped unparsed."""
    # JSON escapes \n inside strings, so every raw b"\n" ends a line.
    offset, position = 0, 0
    while (end := jsonl.find(b"\n", offset)) != -1:
        if position >= start:
            item = decode_json(jsonl[offset:end])
            yield ScopeEntry(position, item["accountingEntryId"], item["status"])
        offset, position = end + 1, position + 1


class ScopeBuilder:
    """Feed it pages in fetch order, then `build()`.

    Memory: one status per distinct item seen (the manifest counts every one) plus the
    serialised line of each item currently in scope.
    """

    def __init__(self) -> None:
        self._latest_status: dict[str, str] = {}
        self._in_scope_lines: dict[str, bytes] = {}

    def add_items(self, items: Iterable[JsonObject]) -> None:
        latest_status = self._latest_status
        in_scope_lines = self._in_scope_lines
        for item in items:
            entry_id: str = item["accountingEntryId"]
            status: str = sys.intern(item["status"])
            latest_status[entry_id] = status
            if status in IN_SCOPE_STATUSES:
                in_scope_lines[entry_id] = serialize_item(item)
            else:
                in_scope_lines.pop(entry_id, None)

    def build(self) -> Scope:
        seen = Counter(self._latest_status.values())
        unknown = sorted(status for status in seen if status not in KNOWN_ITEM_STATUSES)
        if unknown:
            logger.warning(
                "items with unknown statuses left out of scope",
                extra={"unknownStatuses": {status: seen[status] for status in unknown}},
            )
        ordered_ids = sorted(self._in_scope_lines)
        jsonl = b"".join([self._in_scope_lines[entry_id] for entry_id in ordered_ids])
        in_scope = {status: count for status, count in seen.items() if status in IN_SCOPE_STATUSES}
        return Scope(
            jsonl=jsonl,
            item_count=len(ordered_ids),
            counts_by_status=dict(sorted(in_scope.items())),
            seen_counts_by_status=dict(sorted(seen.items())),
        )


def build_scope(pages: Iterable[Iterable[JsonObject]]) -> Scope:
    builder = ScopeBuilder()
    for items in pages:
        builder.add_items(items)
    return builder.build()


def build_manifest(
    job_id: str,
    scope: Scope,
    *,
    company_id: str | None,
    run_id: int,
    scope_key: str,
    pages_fetched: int,
    started_at: datetime,
    completed_at: datetime,
) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "companyId": company_id,
        "runId": run_id,
        "scopeKey": scope_key,
        "itemCount": scope.item_count,
        "countsByStatus": scope.counts_by_status,
        "seenCountsByStatus": scope.seen_counts_by_status,
        "ordering": ORDERING,
        "sha256": scope.sha256,
        "pagesFetched": pages_fetched,
        "startedAt": iso_utc(started_at),
        "completedAt": iso_utc(completed_at),
        "schemaVersion": SCHEMA_VERSION,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
