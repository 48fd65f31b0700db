"""The walk's pipeline over in-memory ports: pages persisted behind the walk, the checkpoint
only over pages archived with their cursor recorded, failures raised as they were raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef, LoopTicket
from pleo_scope.errors import JobNotFound, RepeatedCursor
from pleo_scope.ports import FollowedCursor, WalkPosition, WalkState
from pleo_scope.service import ScopeJobService, ServiceSettings
from tests.fakes import (
    MemoryArchive,
    MemoryCheckpoints,
    MemoryLedger,
    MemoryQueue,
    RecordingHandOver,
)
from tests.support import FakeClock, make_client, reference_scope
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.transport import in_memory_transport

JOB = "66666666-0000-4000-8000-000000000006"


class CheckingCheckpoints(MemoryCheckpoints):
    """Each move asserts that every page it claims is archived and its cursor recorded;
    each takes `seconds` (a slow DynamoDB), so that pages pile up behind it."""

    def __init__(self, archive: MemoryArchive, seconds: float = 0.0) -> None:
        super().__init__()
        self.archive, self.seconds = archive, seconds
        self.moves: list[tuple[int, int]] = []

    def advance(
        self,
        state: WalkState,
        position: WalkPosition,
        *,
        complete: bool = False,
        followed: Sequence[FollowedCursor] = (),
    ) -> WalkState:
        time.sleep(self.seconds)
        numbers = [f.page_number for f in followed]
        for number in range(state.pages_fetched + 1, position.pages_fetched + 1):
            raw = self.archive.objects[f"{state.job_id}/pages/{state.run_id}/{number}"]
            assert raw
            last = complete and number == position.pages_fetched  # no next page: no cursor
            assert number in numbers or last
        self.moves.append((state.pages_fetched, position.pages_fetched))
        return super().advance(state, position, complete=complete, followed=followed)


class InFlight:
    """Observer: the most pages fetched and not yet checkpointed at any moment."""

    def __init__(self) -> None:
        self.fetched = self.checkpointed = self.most = 0
        self.lock = threading.Lock()

    def on_step(self, step: str, job_id: str, number: int) -> None:
        with self.lock:
            if step == "page_fetched":
                self.fetched = number
            elif step == "checkpoint_written":
                self.checkpointed = number
            self.most = max(self.most, self.fetched - self.checkpointed)


class TickingTransport(httpx.BaseTransport):
    """Each request takes one second of the fake clock (and `real_seconds` of real time)."""

    def __init__(self, inner: httpx.BaseTransport, clock: FakeClock, real_seconds: float) -> None:
        self.inner, self.clock, self.real_seconds = inner, clock, real_seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.real_seconds)
        self.clock.elapsed += 1.0
        return self.inner.handle_request(request)


def make_service(
    simulator: PleoSimulator, depth: int, real_seconds: float = 0.0, **ports: Any
) -> ScopeJobService:
    archive = ports.pop("archive", MemoryArchive())
    clock = FakeClock()
    transport = TickingTransport(in_memory_transport(simulator), clock, real_seconds)
    return ScopeJobService(
        pleo=make_client(transport=transport, clock=clock, page_size=10),
        checkpoints=ports.pop("checkpoints", CheckingCheckpoints(archive)),
        archive=archive,
        queue=MemoryQueue(),
        ledger=MemoryLedger(),
        hand_over=RecordingHandOver(),
        settings=ServiceSettings(safety_margin_seconds=1.0, walk_pipeline_depth=depth),
        clock=clock,
        **ports,
    )


@pytest.fixture
def simulator() -> PleoSimulator:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=300))  # 30 pages of 10
    return simulator


def expected(simulator: PleoSimulator) -> bytes:
    job = simulator.job(JOB)
    return reference_scope([job.item_at(i) for i in range(job.item_count)])


@pytest.mark.parametrize("depth", [0, 1, 4, 16])
def test_pages_are_checkpointed_in_order_over_archived_pages_only(
    simulator: PleoSimulator, depth: int
) -> None:
    archive = MemoryArchive()
    checkpoints = CheckingCheckpoints(archive, seconds=0.002)
    service = make_service(simulator, depth, archive=archive, checkpoints=checkpoints)
    observer = InFlight()
    service = service.with_ports(observer=observer)
    result, _ = service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-1")
    assert result.done
    assert result.pages_fetched == 30
    assert archive.get_scope(JOB) == expected(simulator)
    # Moves follow each other; several pages per move once pages pile up behind a slow one.
    assert [a for a, _ in checkpoints.moves] == [0] + [b for _, b in checkpoints.moves[:-1]]
    assert checkpoints.moves[-1][1] == 30
    assert checkpoints.records[JOB].phase in ("walked", "scoped", "published")
    # In memory: the pages in flight, and the one fetched page waiting for room.
    assert observer.most <= max(depth, 1) + 1
    if depth > 1:
        assert observer.most > 1  # the walk did run ahead of the checkpoint


@pytest.mark.parametrize(("interval", "most_moves"), [(0.0, 30), (3.5, 11)])
def test_the_checkpoint_moves_once_per_interval_over_every_page_done_since(
    simulator: PleoSimulator, interval: float, most_moves: int
) -> None:
    archive = MemoryArchive()
    checkpoints = CheckingCheckpoints(archive)
    # A page per second of the fake clock (and 20 ms of real time: each page's writes are
    # done before the next page comes).
    service = make_service(simulator, 16, 0.02, archive=archive, checkpoints=checkpoints)
    service = replace(
        service,
        settings=replace(service.settings, checkpoint_interval_seconds=interval),
    )
    result, _ = service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-1")
    assert result.done
    assert archive.get_scope(JOB) == expected(simulator)
    assert [a for a, _ in checkpoints.moves] == [0] + [b for _, b in checkpoints.moves[:-1]]
    assert checkpoints.moves[-1][1] == 30
    # 30 pages in about 32 s of the fake clock: with 3.5 s, a write per 3.5 s and the last.
    assert len(checkpoints.moves) <= most_moves, checkpoints.moves
    if interval == 0:
        assert len(checkpoints.moves) > 20, checkpoints.moves  # about one per page


def test_an_s3_failure_in_the_pipeline_is_raised_as_is_and_nothing_stays_running(
    simulator: PleoSimulator,
) -> None:
    class FailingArchive(MemoryArchive):
        failing = True

        def put_page(self, job_id: str, run_id: int, number: int, raw: bytes) -> None:
            if number == 7 and self.failing:
                raise ClientError({"Error": {"Code": "InternalError"}}, "PutObject")
            super().put_page(job_id, run_id, number, raw)

    archive = FailingArchive()
    checkpoints = CheckingCheckpoints(archive)
    service = make_service(simulator, 4, archive=archive, checkpoints=checkpoints)
    threads = threading.active_count()
    with pytest.raises(ClientError, match="InternalError"):
        service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-1")
    assert threading.active_count() == threads
    assert checkpoints.records[JOB].pages_fetched < 7
    # The rerun fetches again from the checkpoint and finishes the same scope.
    archive.failing = False
    result, _ = service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-2")
    assert result.done
    assert service.archive.get_scope(JOB, 1) == expected(simulator)


@pytest.mark.parametrize("depth", [0, 8])
def test_a_cursor_loop_across_invocations_is_repeated_cursor(
    simulator: PleoSimulator, depth: int
) -> None:
    """A, B, A: A followed in the first invocation, repeated in the second."""
    service = make_service(simulator, depth)
    budget = Budget.from_remaining(service.clock, 9.0)  # a few pages, then time is up
    first, _ = service.run(JobRef(JOB), budget, "invocation-1")
    assert first.done is False
    walked = first.pages_fetched
    assert walked >= 1
    # The simulator's repeat_cursor answers the first page's endCursor again.
    simulator.inject(JOB, Fault("repeat_cursor", times=1))
    with pytest.raises(RepeatedCursor, match=f"page {walked + 1}"):
        service.run(JobRef(JOB), Budget.unbounded(service.clock), "loop-1", ticket=LoopTicket(1, 1))
    assert service.checkpoints.records[JOB].pages_fetched == walked  # type: ignore[attr-defined]


def test_a_cursor_loop_within_an_invocation_stops_before_the_loops_page(
    simulator: PleoSimulator,
) -> None:
    service = make_service(simulator, 8)
    simulator.inject(JOB, Fault("repeat_cursor", frozenset({5}), times=1))  # job check is #1
    with pytest.raises(RepeatedCursor, match="page 4"):
        service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-1")
    assert simulator.request_count(JOB) == 5  # the repeated cursor is never requested
    assert service.checkpoints.records[JOB].pages_fetched <= 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("depth", [0, 8])
def test_a_pleo_failure_mid_walk_keeps_the_pages_fetched_before_it(
    simulator: PleoSimulator, depth: int
) -> None:
    archive = MemoryArchive()
    checkpoints = CheckingCheckpoints(archive, seconds=0.01)  # pages pile up behind it
    service = make_service(simulator, depth, archive=archive, checkpoints=checkpoints)
    simulator.inject(JOB, Fault("delete_job", frozenset({6})))  # job check, then pages 1-4
    with pytest.raises(JobNotFound):
        service.run(JobRef(JOB), Budget.unbounded(service.clock), "invocation-1")
    assert checkpoints.records[JOB].pages_fetched == 4
