"""An admission invocation's slice (pleo_scope.invocation.WalkSlice) over in-memory ports: a
walk of a few pages is never handed over for time and then finishes on the invocation's own
time; a longer one hands over once the slice and its minimum of pages are spent."""

from __future__ import annotations

from collections.abc import Sequence

from pleo_scope.clock import Budget
from pleo_scope.contract import Continuing, Done, JobRef, LoopTicket
from pleo_scope.invocation import WalkSlice
from pleo_scope.ports import OutgoingMessage
from pleo_scope.service import ScopeJobService, ServiceSettings
from tests.fakes import (
    MemoryArchive,
    MemoryCheckpoints,
    MemoryLedger,
    MemoryPleo,
    MemoryQueue,
    RecordingHandOver,
)
from tests.support import FakeClock
from tooling.pleo_sim import SimJob

JOB_ID = "77777777-0000-4000-8000-000000000007"
MARGIN = 1.0


class SlowQueue(MemoryQueue):
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        self.clock.sleep(self.seconds)
        return super().send_batch(messages)


def service_for(
    items: int,
    clock: FakeClock,
    *,
    queue: MemoryQueue | None = None,
    total: bool = False,
    rate_limited: bool = False,
) -> ScopeJobService:
    """Pages of 20 items, each request 1 s of the fake clock (a slow, starved Pleo); with
    `total`, pages say how many items the job holds; `rate_limited`: the client says its
    rate limit allows a request per second at best (its pace)."""
    pleo = MemoryPleo(
        page_size=20,
        clock=clock,
        seconds_per_request=1.0,
        worst_case_seconds=2.0,
        reports_total=total,
        request_interval=1.0 if rate_limited else 0.0,
    )
    pleo.add_job(SimJob(JOB_ID, generated_items=items))
    checkpoints = MemoryCheckpoints()
    return ScopeJobService(
        pleo=pleo,
        checkpoints=checkpoints,
        archive=MemoryArchive(),
        queue=queue or MemoryQueue(),
        ledger=MemoryLedger(checkpoints),
        hand_over=RecordingHandOver(),
        settings=ServiceSettings(safety_margin_seconds=MARGIN, unit_size=10),
        clock=clock,
    )


def admitted(service: ScopeJobService, clock: FakeClock, slice_seconds: float = 2.0) -> object:
    """One admission invocation: 900 s of its own, a slice of `slice_seconds`."""
    walk_slice = WalkSlice(Budget.from_remaining(clock, slice_seconds + MARGIN), min_pages=10)
    whole = Budget.from_remaining(clock, 900.0)
    return service.run(JobRef(JOB_ID), whole, "admission", walk_slice=walk_slice)[0]


def test_a_few_slow_pages_finish_in_their_admission_invocation() -> None:
    clock = FakeClock()
    service = service_for(55, clock)  # the job check, 3 pages, the re-check: 5 s, slice 2 s
    result = admitted(service, clock)
    assert isinstance(result, Done), result
    assert result.pages_fetched == 3
    assert service.hand_over.started == []  # type: ignore[attr-defined]
    # The slice as the invocation's whole budget (before) hands the same job over.
    before = service_for(55, FakeClock())
    cut = before.run(JobRef(JOB_ID), Budget.from_remaining(before.clock, 3.0), "admission")[0]
    assert isinstance(cut, Continuing)


def test_a_job_walked_whole_in_its_slice_is_published_on_the_invocation_s_time() -> None:
    clock = FakeClock()
    service = service_for(190, clock, queue=SlowQueue(clock, 5.0))  # 10 pages, 2 batches
    result = admitted(service, clock)
    assert isinstance(result, Done), result
    assert len(service.queue.items()) == result.items_in_scope  # type: ignore[attr-defined]


def test_a_long_walk_hands_over_after_its_slice_and_its_minimum_of_pages() -> None:
    clock = FakeClock()
    service = service_for(600, clock)  # 30 pages of 1 s
    result = admitted(service, clock)
    assert isinstance(result, Continuing), result
    assert result.pages_fetched == 10
    assert result.handed_over is not None
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]


def test_a_walk_resumed_in_admission_leaves_its_rebuild_and_publish_to_the_slice() -> None:
    clock = FakeClock()
    service = service_for(190, clock, queue=SlowQueue(clock, 5.0))
    first = service.run(JobRef(JOB_ID), Budget.from_remaining(clock, 6.0), "trigger")[0]
    assert isinstance(first, Continuing)
    assert 0 < first.pages_fetched < 10
    service.hand_over.close_all()  # type: ignore[attr-defined]
    result = admitted(service, clock)  # re-sent through admission: walks the rest
    assert isinstance(result, Continuing), result  # not walked whole here: sliced as before


def test_a_walk_whose_total_outlasts_the_slice_hands_over_after_its_first_page() -> None:
    clock = FakeClock()
    service = service_for(600, clock, total=True)  # 30 pages of 1 s: 29 left, slice 2 s
    result = admitted(service, clock)
    assert isinstance(result, Continuing), result
    assert result.pages_fetched == 1
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]
    assert clock.elapsed == 2.0  # the job check and one page: the slot is free again


def test_a_total_within_the_minimum_of_pages_is_walked_whole_in_admission() -> None:
    clock = FakeClock()
    service = service_for(190, clock, total=True)  # 10 pages of 1 s, slice 2 s
    result = admitted(service, clock)
    assert isinstance(result, Done), result
    assert result.pages_fetched == 10


def test_a_total_that_fits_the_slice_at_the_walk_s_pace_is_walked_whole_in_admission() -> None:
    clock = FakeClock()
    service = service_for(300, clock, total=True)  # 15 pages of 1 s, slice 30 s
    result = admitted(service, clock, slice_seconds=30.0)
    assert isinstance(result, Done), result
    assert result.pages_fetched == 15


def test_a_job_whose_size_outlasts_the_slice_at_its_rate_limit_hands_over_before_a_page() -> None:
    clock = FakeClock()
    service = service_for(600, clock, rate_limited=True)  # 30 pages: 30 s at best, slice 2 s
    result = admitted(service, clock)
    assert isinstance(result, Continuing), result
    assert result.pages_fetched == 0
    assert service.pleo.log == [("job", JOB_ID)]  # type: ignore[attr-defined]
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]
    assert clock.elapsed == 1.0  # the job check alone: the slot is free again


def test_the_loop_walks_from_the_first_page_a_walk_handed_over_before_it() -> None:
    clock = FakeClock()
    service = service_for(600, clock, rate_limited=True)
    handed = admitted(service, clock)
    assert isinstance(handed, Continuing)
    result = service.run(
        JobRef(JOB_ID), Budget.from_remaining(clock, 900.0), "loop", LoopTicket(1, 1)
    )[0]
    assert isinstance(result, Done), result
    assert result.pages_fetched == 30
    assert len(service.queue.items()) == result.items_in_scope  # type: ignore[attr-defined]
    assert service.pleo.log.count(("items", JOB_ID)) == 30  # type: ignore[attr-defined]


def test_a_job_size_within_the_minimum_of_pages_is_walked_whole_at_any_pace() -> None:
    clock = FakeClock()
    service = service_for(190, clock, rate_limited=True)  # 10 pages: 10 s at best, slice 2 s
    result = admitted(service, clock)
    assert isinstance(result, Done), result
    assert result.pages_fetched == 10


def test_a_job_size_that_fits_the_slice_at_its_rate_limit_is_walked_in_admission() -> None:
    clock = FakeClock()
    service = service_for(300, clock, rate_limited=True)  # 15 pages: 15 s at best, slice 30 s
    result = admitted(service, clock, slice_seconds=30.0)
    assert isinstance(result, Done), result
    assert result.pages_fetched == 15


def test_a_walk_resumed_in_admission_is_not_handed_over_by_its_job_s_size() -> None:
    clock = FakeClock()
    service = service_for(600, clock, rate_limited=True)
    first = service.run(JobRef(JOB_ID), Budget.from_remaining(clock, 6.0), "trigger")[0]
    assert isinstance(first, Continuing)
    assert first.pages_fetched > 0
    service.hand_over.close_all()  # type: ignore[attr-defined]
    result = admitted(service, clock)  # re-sent: its slice walks on from the checkpoint
    assert isinstance(result, Continuing), result
    assert result.pages_fetched == first.pages_fetched + 10  # the slice's minimum of pages
