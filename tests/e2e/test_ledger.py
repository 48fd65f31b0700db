"""The DynamoDB ledger on moto's server: unit records and the walk record's unit progress in
one transaction, under the lease."""

from __future__ import annotations

import uuid

import pytest

from pleo_scope.aws.ledger import DynamoPublishLedger
from pleo_scope.clock import SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.errors import WalkInProgress
from pleo_scope.ports import UnitRecord, WalkState
from pleo_scope.publishing import entry_hash
from tooling.testkit.harness import Stack


def ledger_of(stack: Stack) -> DynamoPublishLedger:
    return DynamoPublishLedger(
        stack.app.app.dynamodb,
        stack.app.settings.scope_table,
        SystemClock(),
        stack.app.app.checkpoints,
    )


def unit(number: int, ids: list[str], first: int) -> UnitRecord:
    return UnitRecord(number, first, len(ids), b"".join(entry_hash(i) for i in ids))


def begin(stack: Stack, job_id: str, owner: str) -> WalkState:
    state: WalkState = stack.app.app.checkpoints.begin(JobRef(job_id), owner, 60.0, None)
    return state


def test_units_and_progress_are_written_together_and_read_back_by_run(stack: Stack) -> None:
    ledger, job_id = ledger_of(stack), str(uuid.uuid4())
    state = begin(stack, job_id, "owner-1")
    ids = [f"id-{n}" for n in range(5)] + ["x" * 3000]  # any id length: only hashes are kept
    state = ledger.record(state, [unit(0, ids[:3], 0), unit(1, ids[3:], 3)], 2, 6)
    assert (state.units_published, state.items_published) == (2, 6)
    record = stack.walk_record(job_id)
    assert record is not None
    assert (int(record["unitsPublished"]), int(record["itemsPublished"])) == (2, 6)
    state = ledger.record(state, [unit(3, ["later"], 9)], 2, 7)  # past a gap at unit 2

    assert ledger.units_recorded(job_id, 1, 0) == {0, 1, 3}
    assert ledger.units_recorded(job_id, 1, 2) == {3}
    assert ledger.units_recorded(job_id, 2, 0) == set()
    assert ledger.enqueued_before(job_id, 1) == set()  # nothing before run 1
    expected = {entry_hash(i) for i in [*ids, "later"]}
    assert ledger.enqueued_before(job_id, 2) == expected
    assert ledger.enqueued_before(job_id, 7) == expected
    assert ledger.enqueued_before(str(uuid.uuid4()), 2) == set()


def test_a_lost_lease_cancels_the_whole_transaction(stack: Stack) -> None:
    ledger, job_id = ledger_of(stack), str(uuid.uuid4())
    stale = begin(stack, job_id, "owner-1")
    stack.app.app.checkpoints.release(stale)
    begin(stack, job_id, "owner-2")  # another invocation took the job over
    with pytest.raises(WalkInProgress, match=job_id):
        ledger.record(stale, [unit(0, ["a"], 0)], 1, 1)
    assert ledger.units_recorded(job_id, stale.run_id, 0) == set()
    record = stack.walk_record(job_id)
    assert record is not None
    assert "unitsPublished" not in record or int(record["unitsPublished"]) == 0
