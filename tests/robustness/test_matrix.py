"""The light robustness matrix (the README's table is the full one, from the same code):
no crash point, API storm, AWS fault or bad input loses or duplicates an item, with one
documented exception."""

from __future__ import annotations

import pytest

from tooling.harness import Stack
from tooling.robustness import STEPS, Row, run_matrix

# The documented gap (README, "Delivery guarantees"): a crash between a batch's send and its
# ledger write, rerun after SQS's 5-minute dedup window, sends that batch (<= 10) again.
GAP = ("crash (rerun after SQS's 5-min dedup window)", "after batch sent")
# Also documented: entries SQS refused inside a batch are sent again after the batch's other
# entries, so the queue's order differs from the scope's there (`position` still tells).
REORDERED = ("AWS fault", "SendMessageBatch refusing 30% of entries")


@pytest.fixture(scope="module")
def rows(stack: Stack) -> list[Row]:
    stack.drain_queue()
    return run_matrix(stack, full=False)


def test_every_case_ran(rows: list[Row]) -> None:
    assert len(rows) == 2 * len(STEPS) + 8 + 4 + 2
    assert all(row.runs > 0 for row in rows), [r.case for r in rows if not r.runs]


def test_nothing_is_lost_or_wrong(rows: list[Row]) -> None:
    assert [(r.category, r.case) for r in rows if r.lost or r.wrong_scope] == []


def test_the_queue_keeps_scope_order_except_after_refused_entries(rows: list[Row]) -> None:
    assert {(r.category, r.case) for r in rows if r.out_of_order} <= {REORDERED}


def test_nothing_is_duplicated_but_the_documented_gap(rows: list[Row]) -> None:
    duplicated = {(r.category, r.case): r.duplicated for r in rows if r.duplicated}
    assert set(duplicated) <= {GAP}
    gap = next(r for r in rows if (r.category, r.case) == GAP)
    assert gap.duplicated <= 10 * gap.runs


def test_bad_input_only_ever_gives_a_result_or_the_typed_error(rows: list[Row]) -> None:
    for row in (r for r in rows if r.category == "bad input"):
        assert set(row.notes) <= {"parsed", "InvalidEvent", "MalformedResponse"}, row.notes
