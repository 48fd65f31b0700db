"""The scope rule and its serialisation, on hand-made pages (no I/O)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import pytest

from pleo_scope.models import NotJson, RawNumber, decode_json
from pleo_scope.scope import (
    ScopeBuilder,
    build_manifest,
    build_scope,
    iter_entries,
    serialize_item,
)
from tests.support import reference_scope
from tooling.pleo_sim.jobs import make_item

JOB = "8eb648ab-0000-4000-8000-000000000000"
A, B, C, D = (f"{n}0000000-0000-4000-8000-000000000000" for n in "abcd")


def test_later_observation_wins_across_pages_and_within_a_page() -> None:
    pages = [
        [make_item(JOB, B, "pending"), make_item(JOB, A, "pending")],
        [
            make_item(JOB, B, "successful"),
            make_item(JOB, C, "failed"),
            make_item(JOB, C, "pending"),
        ],
        [make_item(JOB, D, "in_progress"), make_item(JOB, A, "in_progress")],
    ]
    scope = build_scope(pages)
    assert [e.accounting_entry_id for e in scope.entries()] == [A, C, D]
    assert [e.status for e in scope.entries()] == ["in_progress", "pending", "in_progress"]
    assert scope.counts_by_status == {"in_progress": 2, "pending": 1}
    assert scope.seen_counts_by_status == {"in_progress": 2, "pending": 1, "successful": 1}
    assert scope.jsonl == reference_scope([item for page in pages for item in page])


def test_lines_are_compact_sorted_utf8_and_keep_unknown_fields() -> None:
    item = make_item(JOB, A, "pending", zNote="Kø på Nørrebro", aNew={"b": 1, "a": None})
    scope = build_scope([[item]])
    line = scope.jsonl.decode("utf-8")
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert "Kø på Nørrebro" in line  # UTF-8, not \u escapes
    assert ", " not in line
    assert ": " not in line
    assert list(json.loads(line)) == sorted(item)
    assert line.startswith('{"aNew":{"a":null,"b":1},"accountingEntryId":')


def test_empty_scope_is_zero_bytes_with_counts_of_everything_seen() -> None:
    scope = build_scope([[make_item(JOB, A, "successful")], [], [make_item(JOB, B, "abandoned")]])
    assert scope.jsonl == b""
    assert scope.item_count == 0
    assert scope.seen_counts_by_status == {"abandoned": 1, "successful": 1}
    assert list(scope.entries()) == []


def test_unknown_status_is_out_of_scope_counted_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = [[make_item(JOB, A, "pending"), make_item(JOB, B, "queued_for_review")]]
    with caplog.at_level(logging.WARNING, logger="pleo_scope.scope"):
        scope = build_scope(pages)
    assert [e.accounting_entry_id for e in scope.entries()] == [A]
    assert scope.seen_counts_by_status == {"pending": 1, "queued_for_review": 1}
    assert any(
        getattr(r, "unknownStatuses", None) == {"queued_for_review": 1} for r in caplog.records
    )


def test_order_is_string_order_of_the_ids_as_sent() -> None:
    ids = ["b", "B", "a-10", "a-9", "ä"]
    scope = build_scope([[make_item(JOB, i, "pending") for i in ids]])
    assert [e.accounting_entry_id for e in scope.entries()] == sorted(ids)
    assert [e.position for e in iter_entries(scope.jsonl)] == [0, 1, 2, 3, 4]


def test_builder_fed_in_pieces_equals_builder_fed_at_once() -> None:
    items = [make_item(JOB, f"id-{n % 7}", ("pending", "failed")[n % 2]) for n in range(30)]
    whole = ScopeBuilder()
    whole.add_items(items)
    pieces = ScopeBuilder()
    for start in range(0, 30, 4):
        pieces.add_items(items[start : start + 4])
    assert whole.build() == pieces.build()


def test_manifest_has_the_contract_fields() -> None:
    scope = build_scope([[make_item(JOB, A, "pending"), make_item(JOB, B, "failed")]])
    manifest = build_manifest(
        JOB,
        scope,
        company_id=None,
        run_id=2,
        scope_key=f"export-jobs/{JOB}/runs/000002/scope.jsonl",
        pages_fetched=3,
        started_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        completed_at=datetime(2026, 11, 23, 12, 1, 30, 250000, tzinfo=UTC),
    )
    assert manifest == {
        "jobId": JOB,
        "companyId": None,
        "runId": 2,
        "scopeKey": f"export-jobs/{JOB}/runs/000002/scope.jsonl",
        "itemCount": 1,
        "countsByStatus": {"pending": 1},
        "seenCountsByStatus": {"failed": 1, "pending": 1},
        "ordering": "accountingEntryId ASC",
        "sha256": scope.sha256,
        "pagesFetched": 3,
        "startedAt": "2026-11-23T12:00:00.000Z",
        "completedAt": "2026-11-23T12:01:30.250Z",
        "schemaVersion": 2,
    }
    assert len(manifest["sha256"]) == 64


# --- hostile text: every JSON string Pleo can send ends in the scope -------------------------

LONE = '"Receipt \\ud83d", "low": "\\udc00x", "pair": "\\ud83d\\ude00", "nul": "\\u0000\\u001f"'


def test_a_lone_surrogate_is_written_as_its_escape_the_same_on_every_path() -> None:
    # Valid JSON from Pleo: a lone high surrogate, a lone low one, a real pair, control chars.
    raw_page = (
        '{"data": [{"accountingEntryId": "a\\udfff", "status": "pending", "failureReason":'
        + LONE
        + '}], "pagination": {"hasNextPage": false}}'
    ).encode()
    live = httpx.Response(200, content=raw_page).json()["data"]  # as the client parses it
    rebuilt = json.loads(raw_page)["data"]  # the archived raw page, read back (rebuild)
    jsonl = build_scope([live]).jsonl
    assert jsonl == build_scope([rebuilt]).jsonl == build_scope([live]).jsonl
    assert jsonl == (
        b'{"accountingEntryId":"a\\udfff","failureReason":"Receipt \\ud83d","low":"\\udc00x",'
        b'"nul":"\\u0000\\u001f","pair":"\xf0\x9f\x98\x80","status":"pending"}\n'
    )
    assert jsonl == reference_scope(live)
    # The escape reads back as the same text; the line is one line of UTF-8.
    assert json.loads(jsonl) == live[0]
    jsonl.decode("utf-8")
    assert [e.accounting_entry_id for e in build_scope([live]).entries()] == ["a\udfff"]


def test_raw_surrogate_bytes_read_the_same_live_and_from_the_archive() -> None:
    # CESU-8 bytes of a surrogate: json.loads(bytes) reads them (surrogatepass), both in the
    # client (httpx's Response.json) and in the rebuild from the archived raw page.
    raw_page = (
        b'{"data": [{"accountingEntryId": "x", "status": "pending", "note": "\xed\xa0\xbd"}],'
        b' "pagination": {"hasNextPage": false}}'
    )
    live = httpx.Response(200, content=raw_page).json()["data"]
    jsonl = build_scope([live]).jsonl
    assert jsonl == build_scope([json.loads(raw_page)["data"]]).jsonl
    assert jsonl == b'{"accountingEntryId":"x","note":"\\ud83d","status":"pending"}\n'


def test_an_id_of_any_length_is_carried_and_ordered() -> None:
    long_id = "b" * 3000
    scope = build_scope([[make_item(JOB, long_id, "pending"), make_item(JOB, A, "pending")]])
    assert [e.accounting_entry_id for e in scope.entries()] == [A, long_id]


# --- numbers (contract v3) -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["1e400", "-1E+400", "2.5e-400", "-0.1e-330", "9" * 5000])
def test_a_number_a_double_cannot_hold_is_written_as_sent(text: str) -> None:
    item = decode_json(f'{{"accountingEntryId":"a","status":"pending","n":[{text}]}}')
    assert item["n"] == [RawNumber(text)]
    assert (
        serialize_item(item)
        == f'{{"accountingEntryId":"a","n":[{text}],"status":"pending"}}\n'.encode()
    )


@pytest.mark.parametrize(
    ("text", "value"), [("0e-400", 0.0), ("-0.0", -0.0), ("1e308", 1e308), ("12", 12)]
)
def test_a_number_a_double_holds_is_read_as_today(text: str, value: float) -> None:
    assert decode_json(text) == value
    assert not isinstance(decode_json(text), RawNumber)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_the_literals_python_reads_but_json_has_not_are_refused(literal: str) -> None:
    with pytest.raises(NotJson, match=literal):
        decode_json(f'{{"n": {literal}}}')
