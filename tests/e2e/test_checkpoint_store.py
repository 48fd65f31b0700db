"""The walk checkpoint's moves in DynamoDB (moto's server, the table from template.yaml):
the cursors of the pages a move covers are recorded in the same transaction, so that the
loop guard holds across invocations and the checkpoint never passes an unrecorded cursor."""

from __future__ import annotations

import uuid

import pytest

from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.clock import SystemClock
from pleo_scope.contract import JobRef, LoopTicket
from pleo_scope.errors import RepeatedCursor, WalkInProgress
from pleo_scope.ports import FollowedCursor, WalkPosition
from tooling.testkit.harness import Stack


def store_of(stack: Stack) -> DynamoCheckpointStore:
    table = stack.aws.physical["ScopeTable"]
    return DynamoCheckpointStore(stack.app.app.dynamodb, table, SystemClock())


def cursors(*pages: int) -> list[FollowedCursor]:
    return [FollowedCursor(f"cursor-{n}", n) for n in pages]


def test_a_move_records_its_cursors_and_a_later_loop_back_moves_nothing(stack: Stack) -> None:
    store, job = store_of(stack), JobRef(str(uuid.uuid4()))
    first = store.begin(job, "invocation-1", 60.0, None)
    state = store.advance(first, WalkPosition("cursor-3", 3), followed=cursors(1, 2, 3))
    store.release(state)
    # The next invocation: page 4's cursor is page 2's again (Pleo looped back).
    state = store.begin(job, "invocation-2", 60.0, None)
    assert state.pages_fetched == 3
    looped = [FollowedCursor("cursor-4", 4), FollowedCursor("cursor-2", 5)]
    with pytest.raises(RepeatedCursor, match="page 5"):
        store.advance(state, WalkPosition("cursor-2", 5), followed=looped)
    assert store.peek(job) is not None
    assert store.peek(job).pages_fetched == 3  # type: ignore[union-attr]
    # Page 4 fetched twice (a crash before its checkpoint): the same cursor, the same page.
    again = store.advance(state, WalkPosition("cursor-4", 4), followed=cursors(4))
    assert again.pages_fetched == 4
    done = store.advance(again, WalkPosition(None, 5), complete=True)
    assert (done.phase, store.peek(job).phase) == ("walked", "walked")  # type: ignore[union-attr]


def test_a_move_under_a_lost_lease_is_walk_in_progress_and_records_nothing(
    stack: Stack,
) -> None:
    store, job = store_of(stack), JobRef(str(uuid.uuid4()))
    state = store.begin(job, "invocation-1", 60.0, None)
    stale = state.but(owner="someone-else")
    with pytest.raises(WalkInProgress):
        store.advance(stale, WalkPosition("cursor-x", 1), followed=[FollowedCursor("cursor-x", 1)])
    # Nothing was recorded: the owner may follow that cursor from another page.
    followed = [FollowedCursor("cursor-a", 1), FollowedCursor("cursor-x", 2)]
    moved = store.advance(state, WalkPosition("cursor-x", 2), followed=followed)
    assert moved.pages_fetched == 2


class CountedReads:
    """The store's DynamoDB client, counting the GetItem calls that `confirm` makes."""

    def __init__(self, client: object) -> None:
        self._client, self.reads = client, 0

    def get_item(self, **request: object) -> object:
        self.reads += 1
        return self._client.get_item(**request)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def counted_store(stack: Stack) -> tuple[DynamoCheckpointStore, CountedReads]:
    client = CountedReads(stack.app.app.dynamodb)
    table = stack.aws.physical["ScopeTable"]
    return DynamoCheckpointStore(client, table, SystemClock()), client  # type: ignore[arg-type]


def test_a_trigger_s_lease_is_confirmed_without_a_read_until_near_its_expiry(
    stack: Stack,
) -> None:
    store, client = counted_store(stack)
    job = JobRef(str(uuid.uuid4()))
    state = store.begin(job, "trigger-1", 60.0, None)
    store.confirm(state)
    assert client.reads == 0  # nobody else may take a trigger's lease before it expires
    # Within a clock's skew of the expiry this invocation knows of: the table decides.
    near = state.but(lease_expires_at=int(SystemClock().now().timestamp()))
    store.confirm(near)  # the table's expiry is a minute away: still held
    assert client.reads == 1


def test_a_hand_over_s_lease_taken_over_is_refused_by_confirm(stack: Stack) -> None:
    store, client = counted_store(stack)
    job = JobRef(str(uuid.uuid4()))
    loop = store.begin(job, "loop-1", 60.0, LoopTicket(1, 1))
    store.confirm(loop)
    assert client.reads == 1  # a hand-over's lease may be taken early: always read
    # A trigger finds hand-over 1's execution closed and takes over, well before expiry.
    store.begin(job, "trigger-2", 60.0, None, take_over_from=1)
    with pytest.raises(WalkInProgress):
        store.confirm(loop)


def test_finish_publishes_the_run_and_frees_the_lease_in_one_write(stack: Stack) -> None:
    store, job = store_of(stack), JobRef(str(uuid.uuid4()))
    state = store.begin(job, "trigger-1", 60.0, None)
    with pytest.raises(WalkInProgress):
        store.finish(state.but(owner="someone-else"))
    assert store.peek(job).phase == "walking"  # type: ignore[union-attr]
    finished = store.finish(state)
    assert finished.phase == "published"
    assert store.peek(job).phase == "published"  # type: ignore[union-attr]
    # Free at once: the next trigger starts the job's next run, though 60 s were leased.
    again = store.begin(job, "trigger-2", 60.0, None)
    assert (again.run_id, again.phase) == (2, "walking")
