"""The publish step over in-memory ports: units (contract v2), the ledger by unit, resumes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pleo_scope.aws.keys import pointer_key, run_manifest_key
from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.errors import PublishFailed, UnitTooLarge, WalkInProgress
from pleo_scope.invocation import InvocationStats, ServiceSettings
from pleo_scope.ports import NoObserver, StepObserver, WalkState
from pleo_scope.publishing import Publisher, entry_hash
from tests.fakes import MemoryArchive, MemoryCheckpoints, MemoryLedger, MemoryQueue
from tests.support import FakeClock

JOB = "66666666-0000-4000-8000-000000000006"


def scope_of(ids: list[str]) -> bytes:
    lines = [
        json.dumps({"accountingEntryId": i, "status": "pending"}, sort_keys=True) + "\n"
        for i in ids
    ]
    return "".join(lines).encode()


def entry_ids(count: int, start: int = 0) -> list[str]:
    return [f"00000000-0000-4000-8000-{n:012d}" for n in range(start, start + count)]


class Harness:
    """One job's publish over the fakes, run after run as the service would."""

    def __init__(self, unit_size: int) -> None:
        self.clock = FakeClock()
        self.checkpoints = MemoryCheckpoints(clock=self.clock)
        self.ledger = MemoryLedger(self.checkpoints)
        self.queue = MemoryQueue()
        self.archive = MemoryArchive()
        self.settings = ServiceSettings(safety_margin_seconds=1.0, unit_size=unit_size)

    def publisher(self, observer: StepObserver | None = None) -> Publisher:
        return Publisher(
            self.checkpoints,
            self.queue,
            self.ledger,
            self.archive,
            observer or NoObserver(),
            self.settings,
        )

    def scoped(self, jsonl: bytes, owner: str = "owner", new_run: bool = False) -> WalkState:
        """The state the service hands to the publish step: phase `scoped`, progress reset."""
        if new_run:
            state = self.checkpoints.records[JOB]
            self.checkpoints.records[JOB] = state.but(phase="published")
        state = self.checkpoints.begin(JobRef(JOB), owner, 60.0, None)
        if state.phase == "walking":
            sha256 = hashlib.sha256(jsonl).hexdigest()
            manifest = json.dumps({"runId": state.run_id}).encode()
            self.archive.put_scope(JOB, state.run_id, jsonl, manifest, sha256)
            state = self.checkpoints.update(
                state,
                phase="scoped",
                items_in_scope=jsonl.count(b"\n"),
                scope_sha256=hashlib.sha256(jsonl).hexdigest(),
                items_published=0,
                units_published=0,
                unit_size=None,
                unit_count=None,
            )
        return state

    def publish(
        self, state: WalkState, jsonl: bytes, publisher: Publisher | None = None
    ) -> tuple[WalkState, bool]:
        try:
            return (publisher or self.publisher()).publish(
                state, jsonl, Budget.unbounded(self.clock), InvocationStats()
            )
        finally:
            self.checkpoints.release(state)


def items_of(queue: MemoryQueue) -> list[dict[str, Any]]:
    return queue.items()


@pytest.mark.parametrize(("size", "items"), [(100, 250), (1, 25), (7, 50), (100, 100), (3, 0)])
def test_units_cut_the_scope_in_order(size: int, items: int) -> None:
    harness = Harness(size)
    jsonl = scope_of(entry_ids(items))
    state, done = harness.publish(harness.scoped(jsonl), jsonl)
    assert done
    units = harness.queue.bodies()
    count = -(-items // size)
    assert [u["unit"] for u in units] == list(range(count))
    assert {u["unitCount"] for u in units} <= {count}
    assert all(len(u["items"]) == size for u in units[:-1])
    assert [i["position"] for i in items_of(harness.queue)] == list(range(items))
    assert [i["accountingEntryId"] for i in items_of(harness.queue)] == entry_ids(items)
    assert all(u["scope"]["sha256"] == hashlib.sha256(jsonl).hexdigest() for u in units)
    assert (state.unit_size, state.unit_count, state.units_published) == (size, count, count)
    assert state.items_published == items
    # One ledger write per SendMessageBatch, one message per unit.
    assert harness.ledger.writes == harness.queue.calls == -(-count // 10)
    assert {m.group_id for m in harness.queue.messages} <= {JOB}


def test_a_rewalk_enqueues_only_items_never_enqueued_in_fresh_units() -> None:
    harness = Harness(10)
    first = scope_of(entry_ids(25))
    harness.publish(harness.scoped(first), first)
    harness.queue.messages.clear()
    # Later: 5 of the first items are finished, 12 new ones came, interleaved by id.
    ids = sorted(entry_ids(20, start=5) + [f"00000000-0000-4000-8000-1{n:011d}" for n in range(12)])
    second = scope_of(ids)
    state, done = harness.publish(harness.scoped(second, new_run=True), second)
    assert done
    assert state.run_id == 2
    units = harness.queue.bodies()
    assert [(u["unit"], u["unitCount"], len(u["items"])) for u in units] == [(0, 2, 10), (1, 2, 2)]
    sent = [i["accountingEntryId"] for i in items_of(harness.queue)]
    assert sent == [i for i in ids if i.startswith("00000000-0000-4000-8000-1")]
    assert [i["position"] for i in items_of(harness.queue)] == [ids.index(i) for i in sent]
    # A third run with nothing new sends nothing.
    harness.queue.messages.clear()
    state, done = harness.publish(harness.scoped(second, new_run=True), second)
    assert done
    assert (state.unit_count, harness.queue.messages) == (0, [])


def test_a_resume_keeps_units_and_dedup_ids_and_skips_what_is_recorded() -> None:
    harness = Harness(2)
    jsonl = scope_of(entry_ids(45))
    harness.queue.refuse = {5: 3}  # unit 5 refused three times: a gap in this run's ledger
    with pytest.raises(PublishFailed, match=r"units \[5\]"):
        harness.publish(harness.scoped(jsonl), jsonl)
    state = harness.checkpoints.records[JOB]
    assert state.units_published == 5  # the checkpoint stops at the gap...
    assert harness.ledger.units_recorded(JOB, 1, 5) == {6, 7, 8, 9}  # ...the ledger knows more
    first_ids = {m.unit: m.deduplication_id for m in harness.queue.messages}
    # The setting changes before the resume: the run keeps its unit size.
    harness.settings = ServiceSettings(safety_margin_seconds=1.0, unit_size=100)
    state, done = harness.publish(harness.scoped(jsonl, owner="retry"), jsonl)
    assert done
    units = harness.queue.bodies()
    assert sorted(u["unit"] for u in units) == list(range(23))
    assert [u["unit"] for u in units][-14:] == [5, *range(10, 23)]  # the gap, then the rest
    ids = {m.unit: m.deduplication_id for m in harness.queue.messages}
    assert all(ids[unit] == first_ids[unit] for unit in first_ids)
    assert sorted(i["position"] for i in items_of(harness.queue)) == list(range(45))
    assert (state.units_published, state.items_published) == (23, 45)


def test_the_deduplication_id_is_the_job_and_the_unit_s_items() -> None:
    harness = Harness(3)
    jsonl = scope_of(entry_ids(4))
    harness.publish(harness.scoped(jsonl), jsonl)
    first, last = harness.queue.messages
    hashes = b"".join(entry_hash(i) for i in entry_ids(3))
    assert first.deduplication_id == hashlib.sha256(JOB.encode() + b"\n" + hashes).hexdigest()
    assert last.deduplication_id != first.deduplication_id


def test_a_lost_lease_records_nothing() -> None:
    harness = Harness(1)
    jsonl = scope_of(entry_ids(15))
    state = harness.scoped(jsonl)
    harness.checkpoints.leases[JOB] = "another-invocation"
    with pytest.raises(WalkInProgress):
        harness.publish(state, jsonl)
    assert harness.ledger.units == {}


@dataclass
class AfterStep:
    """A StepObserver that runs `action` once, after the first `step` it sees."""

    step: str
    action: Callable[[], None]
    done: bool = False

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == self.step and not self.done:
            self.done = True
            self.action()


def test_the_lease_is_read_before_the_first_batch_then_proved_by_each_ledger_write() -> None:
    harness = Harness(1)
    jsonl = scope_of(entry_ids(35))
    state, done = harness.publish(harness.scoped(jsonl), jsonl)
    assert (done, state.units_published) == (True, 35)
    assert harness.queue.calls == harness.ledger.writes == 4
    assert harness.checkpoints.confirms == 1  # the pointer too relies on the last write
    assert pointer_key(JOB) in harness.archive.objects


def test_the_ledger_is_asked_only_what_it_can_know() -> None:
    harness = Harness(10)
    first = scope_of(entry_ids(25))
    harness.publish(harness.scoped(first), first)
    assert harness.ledger.queries == 0  # a first run, planned here: nothing recorded yet
    second = scope_of(entry_ids(30))
    harness.publish(harness.scoped(second, new_run=True), second)
    assert harness.ledger.queries == 1  # the earlier run's items; planned here again
    harness.queue.refuse = {0: 3}
    third = scope_of(entry_ids(40))
    with pytest.raises(PublishFailed):
        harness.publish(harness.scoped(third, new_run=True), third)
    harness.queue.refuse = {}
    before = harness.ledger.queries
    harness.publish(harness.scoped(third, owner="retry"), third)  # a resume: planned before
    assert harness.ledger.queries == before + 2
    assert sorted(u["unit"] for u in harness.queue.bodies()[-1:]) == [0]


def test_a_publish_with_nothing_to_send_reads_the_lease_before_the_pointer() -> None:
    harness = Harness(10)
    jsonl = scope_of(entry_ids(25))
    harness.publish(harness.scoped(jsonl), jsonl)
    lost = AfterStep("units_planned", lambda: harness.checkpoints.leases.update({JOB: "other"}))
    confirms = harness.checkpoints.confirms
    state = harness.scoped(jsonl, new_run=True)  # the same items: every one enqueued before
    with pytest.raises(WalkInProgress):
        harness.publish(state, jsonl, harness.publisher(lost))
    assert harness.checkpoints.confirms == confirms + 1
    manifest = harness.archive.objects[pointer_key(JOB)]
    assert manifest == harness.archive.objects[run_manifest_key(JOB, 1)]  # still run 1's


def test_a_lease_taken_over_after_a_ledger_write_ends_the_publish_at_the_next_write() -> None:
    harness = Harness(1)
    jsonl = scope_of(entry_ids(35))
    taken = AfterStep("ledger_written", lambda: harness.checkpoints.leases.update({JOB: "trigger"}))
    with pytest.raises(WalkInProgress):
        harness.publish(harness.scoped(jsonl), jsonl, harness.publisher(taken))
    # The documented window: the next batch went out (same ids: SQS drops it) but nothing
    # of it was recorded, and no batch after it was sent.
    assert sorted(unit for _, _, unit in harness.ledger.units) == list(range(10))
    assert harness.queue.calls == 2


def test_a_lease_that_ran_out_after_a_ledger_write_is_read_again_before_the_next_send() -> None:
    harness = Harness(1)
    jsonl = scope_of(entry_ids(35))
    expired = AfterStep("ledger_written", lambda: harness.clock.sleep(120.0))  # past the 60 s lease
    with pytest.raises(WalkInProgress, match="expired"):
        harness.publish(harness.scoped(jsonl), jsonl, harness.publisher(expired))
    assert harness.queue.calls == 1
    assert harness.checkpoints.confirms == 2


def test_a_publisher_serving_many_invocations_reads_the_lease_at_each_publish() -> None:
    harness = Harness(1)
    lost = AfterStep("units_planned", lambda: harness.checkpoints.leases.update({JOB: "other"}))
    publisher = harness.publisher(lost)  # built once per container, as the service does
    first = scope_of(entry_ids(15))
    lost.done = True  # not in the first invocation
    harness.publish(harness.scoped(first), first, publisher)
    sent = harness.queue.calls
    lost.done = False  # the next one loses the lease once its units are planned
    second = scope_of(entry_ids(15, start=100))
    with pytest.raises(WalkInProgress):
        harness.publish(harness.scoped(second, new_run=True), second, publisher)
    assert harness.queue.calls == sent


def test_batches_are_packed_by_bytes_and_an_oversized_unit_is_a_typed_error() -> None:
    harness = Harness(1)
    long_ids = [f"{n:03d}" + "x" * 60_000 for n in range(12)]  # ~60 KB per unit
    jsonl = scope_of(long_ids)
    harness.publish(harness.scoped(jsonl), jsonl)
    assert len(harness.queue.messages) == 12
    assert harness.queue.calls == 3  # 4 x 60 KB fit in 256 KiB, 5 do not

    harness = Harness(100)
    jsonl = scope_of([f"{n:03d}" + "x" * 20_000 for n in range(60)])  # one 1.2 MB unit
    with pytest.raises(UnitTooLarge, match="SCOPE_UNIT_SIZE"):
        harness.publish(harness.scoped(jsonl), jsonl)
    assert harness.queue.messages == []


def test_ids_with_lone_surrogates_hash_and_travel_as_json() -> None:
    harness = Harness(100)
    odd = ["a\ud800b", "é", "z" * 5000]
    jsonl = "".join(
        json.dumps({"accountingEntryId": i, "status": "pending"}, sort_keys=True) + "\n"
        for i in odd
    ).encode("utf-8", "backslashreplace")
    harness.publish(harness.scoped(jsonl), jsonl)
    [unit] = harness.queue.bodies()
    assert [i["accountingEntryId"] for i in unit["items"]] == odd
    assert len({entry_hash(i) for i in odd}) == 3
