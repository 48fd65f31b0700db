"""The service over in-memory ports and the simulator's logic in memory: no sockets."""

from __future__ import annotations

from collections.abc import Generator

import httpx
import pytest

from pleo_scope.clock import Budget
from pleo_scope.errors import JobNotClaimed, PublishFailed, WalkInProgress, WalkSuperseded
from pleo_scope.models import JsonObject
from pleo_scope.ports import LoopTicket
from pleo_scope.service import ScopeJobService, ServiceSettings, wait_for_step_functions
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

JOB = "55555555-0000-4000-8000-000000000005"
LOOP = LoopTicket(run_id=1, hand_over=1)
"""A loop invocation of the first hand-over's execution."""


@pytest.fixture
def simulator() -> PleoSimulator:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=95))
    return simulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TickingTransport(httpx.BaseTransport):
    """Each request takes one second of the fake clock."""

    def __init__(self, inner: httpx.BaseTransport, clock: FakeClock) -> None:
        self.inner = inner
        self.clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.clock.elapsed += 1.0
        return self.inner.handle_request(request)


@pytest.fixture
def service(simulator: PleoSimulator, clock: FakeClock) -> ScopeJobService:
    transport = TickingTransport(in_memory_transport(simulator), clock)
    checkpoints = MemoryCheckpoints()
    return ScopeJobService(
        pleo=make_client(transport=transport, clock=clock, page_size=20),
        checkpoints=checkpoints,
        archive=MemoryArchive(),
        queue=MemoryQueue(),
        ledger=MemoryLedger(checkpoints),
        hand_over=RecordingHandOver(),
        settings=ServiceSettings(safety_margin_seconds=1.0),
        clock=clock,
    )


def expected(simulator: PleoSimulator) -> bytes:
    job = simulator.job(JOB)
    return reference_scope([job.item_at(i) for i in range(job.item_count)])


def queue_of(service: ScopeJobService) -> MemoryQueue:
    assert isinstance(service.queue, MemoryQueue)
    return service.queue


def test_one_invocation_walks_scopes_and_publishes(
    service: ScopeJobService, simulator: PleoSimulator, clock: FakeClock
) -> None:
    result, stats = service.run(JOB, Budget.unbounded(clock), "invocation-1")
    scope = expected(simulator)
    assert result["done"] is True
    assert result["pagesFetched"] == 5
    assert result["itemsInScope"] == scope.count(b"\n")
    assert stats.items_seen == 95
    assert stats.items_enqueued == result["itemsInScope"]
    assert service.archive.get_scope(JOB, 1) == scope
    assert [m["position"] for m in queue_of(service).items()] == list(range(stats.items_enqueued))
    assert stats.units_enqueued == 1  # units of 100


def test_refused_units_are_sent_again_and_keep_their_ids(
    service: ScopeJobService, clock: FakeClock
) -> None:
    service.settings = ServiceSettings(safety_margin_seconds=1.0, unit_size=3)
    queue_of(service).refuse = {3: 1, 4: 2, 17: 1}
    result, _ = service.run(JOB, Budget.unbounded(clock), "invocation-1")
    positions = sorted(m["position"] for m in queue_of(service).items())
    assert positions == list(range(result["itemsInScope"]))
    dedup_ids = [m.deduplication_id for m in queue_of(service).messages]
    assert len(set(dedup_ids)) == len(dedup_ids)


def test_a_unit_refused_three_times_is_publish_failed_and_the_rerun_finishes(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    service.settings = ServiceSettings(safety_margin_seconds=1.0, unit_size=3)
    queue_of(service).refuse = {12: 3}
    with pytest.raises(PublishFailed, match="units \\[12\\]"):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")
    result, _ = service.run(JOB, Budget.unbounded(clock), "invocation-2")
    assert result["done"] is True
    entries = [m["accountingEntryId"] for m in queue_of(service).items()]
    assert len(entries) == len(set(entries)) == result["itemsInScope"]
    assert sorted(m["unit"] for m in queue_of(service).bodies()) == list(range(24))


def test_a_job_that_is_not_claimed_touches_nothing(
    service: ScopeJobService, simulator: PleoSimulator, clock: FakeClock
) -> None:
    simulator.job(JOB).status = "completed"
    with pytest.raises(JobNotClaimed, match="'completed'"):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")
    assert service.checkpoints.records == {}  # type: ignore[attr-defined]
    assert service.archive.objects == {}  # type: ignore[attr-defined]


def test_a_held_job_is_walk_in_progress(service: ScopeJobService, clock: FakeClock) -> None:
    service.checkpoints.leases[JOB] = "someone-else"  # type: ignore[attr-defined]
    with pytest.raises(WalkInProgress):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")


def test_out_of_time_hands_over_from_outside_step_functions_only(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    # A request's worst case is 6 s and each takes 1 s: a 9 s budget holds the job check
    # and three pages of the ten.
    simulator.job(JOB).generated_items = 200
    result, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger")
    assert result["done"] is False
    assert result["handedOver"]["executionArn"].endswith(f"{JOB}-r1-h1")
    assert result["continuation"] == {"runId": 1, "handOver": 1}
    assert service.hand_over.started == [(JOB, 1, 1)]  # type: ignore[attr-defined]

    looped, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "loop-1", ticket=LOOP)
    assert looped["done"] is False
    assert "handedOver" not in looped
    assert service.hand_over.started == [(JOB, 1, 1)]  # type: ignore[attr-defined]
    assert looped["pagesFetched"] > result["pagesFetched"] > 0

    final, _ = service.run(JOB, Budget.unbounded(clock), "loop-2", ticket=LOOP)
    assert final["done"] is True
    assert service.archive.get_scope(JOB, 1) == expected(simulator)


def test_publishing_stops_on_the_budget_and_resumes_at_the_published_position(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    simulator.job(JOB).generated_items = 400  # about 280 in scope: 29 units of 10, 3 batches
    service.settings = ServiceSettings(safety_margin_seconds=1.0, unit_size=10)

    class SlowQueue(MemoryQueue):
        def send_batch(self, messages):  # type: ignore[no-untyped-def]
            clock.sleep(20.0)  # each batch takes 20 s
            return super().send_batch(messages)

    service.queue = SlowQueue()
    result, _ = service.run(JOB, Budget.from_remaining(clock, 60.0), "trigger")
    assert result["done"] is False
    assert result["phase"] == "scoped"
    assert result["itemsPublished"] == 100  # one batch of 10 units
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop", ticket=LOOP)
    positions = [m["position"] for m in queue_of(service).items()]
    assert positions == list(range(final["itemsInScope"]))


class SlowReads(MemoryArchive):
    """Each archived page takes `seconds` of the fake clock to read back."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def read_pages(
        self, job_id: str, run_id: int, count: int
    ) -> Generator[list[JsonObject], None, None]:
        for items in super().read_pages(job_id, run_id, count):
            self.clock.elapsed += self.seconds
            yield items


def test_a_walk_finished_late_leaves_the_rebuild_to_a_fresh_invocation(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    simulator.job(JOB).generated_items = 200  # 10 pages of 20, 3 per 9-second invocation
    service.archive = SlowReads(clock, seconds=0.8)
    results = [service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger")[0]]
    while results[-1]["phase"] == "walking":
        owner = f"loop-{len(results)}"
        results.append(service.run(JOB, Budget.from_remaining(clock, 9.0), owner, LOOP)[0])
    # The last page came 2 s into the invocation; 8 pages read back at 0.8 s each leave
    # too little for the other 2 (projected from that rate) and the margin: not now.
    assert [r["pagesFetched"] for r in results] == [3, 6, 9, 10]
    assert (results[-1]["done"], results[-1]["phase"]) == (False, "walked")
    # A fresh invocation that walked nothing rebuilds whatever the projection says.
    rebuilt, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "loop-5", LOOP)
    assert rebuilt["phase"] == "scoped"  # 1 + 8 s of 9: the publish is left to the next
    assert service.archive.get_scope(JOB, 1) == expected(simulator)
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop-6", LOOP)
    assert final["done"] is True


def test_a_trigger_adopts_the_running_execution_and_touches_nothing(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    simulator.job(JOB).generated_items = 200
    first, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-1")
    requests = len(simulator.log)
    again, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-2")
    assert again["handedOver"] == {
        "executionArn": first["handedOver"]["executionArn"],
        "adopted": True,
    }
    assert again["pagesFetched"] == first["pagesFetched"]
    assert len(simulator.log) == requests  # no Pleo call
    assert service.hand_over.started == [(JOB, 1, 1)]  # type: ignore[attr-defined]


def test_a_trigger_takes_over_from_a_closed_execution_and_hands_over_anew(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    simulator.job(JOB).generated_items = 200
    service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-1")
    # The loop's invocation dies holding the lease, and its execution ends.
    checkpoints = service.checkpoints
    checkpoints.leases[JOB] = "killed-loop-invocation"  # type: ignore[attr-defined]
    checkpoints.lease_hand_overs[JOB] = 1  # type: ignore[attr-defined]
    service.hand_over.close_all()  # type: ignore[attr-defined]
    again, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-2")
    assert again["pagesFetched"] == 6  # went on from the checkpoint
    assert again["handedOver"]["executionArn"].endswith("-r1-h2")
    assert again["continuation"] == {"runId": 1, "handOver": 2}
    assert service.hand_over.started == [(JOB, 1, 1), (JOB, 1, 2)]  # type: ignore[attr-defined]
    # The first hand-over's execution, were it to run again, is told it is superseded.
    with pytest.raises(WalkSuperseded, match="hand-over 2 owns the walk"):
        service.run(JOB, Budget.unbounded(clock), "late-loop", ticket=LOOP)
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop", ticket=LoopTicket(1, 2))
    assert final["done"] is True
    assert service.archive.get_scope(JOB, 1) == expected(simulator)


def test_a_lease_held_by_a_live_trigger_is_respected(
    service: ScopeJobService, clock: FakeClock
) -> None:
    service.checkpoints.leases[JOB] = "another-trigger"  # type: ignore[attr-defined]
    with pytest.raises(WalkInProgress):
        service.run(JOB, Budget.unbounded(clock), "loop", ticket=LOOP)


def test_a_far_future_retry_after_waits_at_most_a_day(
    service: ScopeJobService, clock: FakeClock, simulator: PleoSimulator
) -> None:
    simulator.inject(
        JOB,
        Fault("status", status=429, retry_after="Fri, 31 Dec 9999 23:59:59 GMT", times=1),
    )
    result, _ = service.run(JOB, Budget.unbounded(clock), "trigger")
    assert result["done"] is False
    assert result["waitSeconds"] == 86_400


@pytest.mark.parametrize(
    ("asked", "waited"),
    [
        (0.0, 0),
        (-3.0, 0),
        (float("nan"), 86_400),
        (0.2, 1),
        (59.0, 59),
        (1e12, 86_400),
        (float("inf"), 86_400),
    ],
)
def test_waits_for_step_functions_are_whole_seconds_up_to_a_day(asked: float, waited: int) -> None:
    assert wait_for_step_functions(asked) == waited
