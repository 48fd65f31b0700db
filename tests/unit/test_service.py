"""The service over in-memory ports, Pleo included: no HTTP stack, no sockets."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace

import pytest

from pleo_scope.clock import Budget
from pleo_scope.contract import Continuing, Done, JobRef, LoopTicket, StepResult
from pleo_scope.errors import JobNotClaimed, PublishFailed, WalkInProgress, WalkSuperseded
from pleo_scope.models import JsonObject
from pleo_scope.service import ScopeJobService, ServiceSettings
from tests.fakes import (
    MemoryArchive,
    MemoryCheckpoints,
    MemoryLedger,
    MemoryPleo,
    MemoryQueue,
    RecordingHandOver,
)
from tests.support import FakeClock, reference_scope
from tooling.pleo_sim import SimJob

JOB_ID = "55555555-0000-4000-8000-000000000005"
JOB = JobRef(JOB_ID)
LOOP = LoopTicket(run_id=1, hand_over=1)
"""A loop invocation of the first hand-over's execution."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pleo(clock: FakeClock) -> MemoryPleo:
    """Each request takes one second of the fake clock; one with less than 6 s left (the
    HTTP client's worst case in tests.support.make_client) is deferred."""
    pleo = MemoryPleo(page_size=20, clock=clock, seconds_per_request=1.0, worst_case_seconds=6.0)
    pleo.add_job(SimJob(JOB_ID, generated_items=95))
    return pleo


@pytest.fixture
def service(pleo: MemoryPleo, clock: FakeClock) -> ScopeJobService:
    checkpoints = MemoryCheckpoints()
    return ScopeJobService(
        pleo=pleo,
        checkpoints=checkpoints,
        archive=MemoryArchive(),
        queue=MemoryQueue(),
        ledger=MemoryLedger(checkpoints),
        hand_over=RecordingHandOver(),
        settings=ServiceSettings(safety_margin_seconds=1.0),
        clock=clock,
    )


def expected(pleo: MemoryPleo) -> bytes:
    job = pleo.jobs[JOB_ID]
    return reference_scope([job.item_at(i) for i in range(job.item_count)])


def queue_of(service: ScopeJobService) -> MemoryQueue:
    assert isinstance(service.queue, MemoryQueue)
    return service.queue


def done(result: StepResult) -> Done:
    assert isinstance(result, Done), result
    return result


def continuing(result: StepResult) -> Continuing:
    assert isinstance(result, Continuing), result
    return result


def test_one_invocation_walks_scopes_and_publishes(
    service: ScopeJobService, pleo: MemoryPleo, clock: FakeClock
) -> None:
    step, stats = service.run(JOB, Budget.unbounded(clock), "invocation-1")
    result = done(step)
    scope = expected(pleo)
    assert result.pages_fetched == 5
    assert result.items_in_scope == scope.count(b"\n")
    assert (result.job, result.run_id) == (JOB, 1)
    assert stats.items_seen == 95
    assert stats.items_enqueued == result.items_in_scope
    assert service.archive.get_scope(JOB_ID, 1) == scope
    assert [m["position"] for m in queue_of(service).items()] == list(range(stats.items_enqueued))
    assert stats.units_enqueued == 1  # units of 100


def test_the_done_result_is_the_contract_v3_shape(
    service: ScopeJobService, clock: FakeClock
) -> None:
    result, _ = service.run(JOB, Budget.unbounded(clock), "invocation-1")
    location = service.archive.location(JOB_ID, 1)
    assert result.payload() == {
        "jobId": JOB_ID,
        "companyId": None,
        "runId": 1,
        "done": True,
        "itemsInScope": done(result).items_in_scope,
        "pagesFetched": 5,
        "scope": {
            "bucket": location.bucket,
            "key": location.key,
            "manifestKey": location.manifest_key,
        },
    }


def test_refused_units_are_sent_again_and_keep_their_ids(
    service: ScopeJobService, clock: FakeClock
) -> None:
    service = replace(service, settings=ServiceSettings(safety_margin_seconds=1.0, unit_size=3))
    queue_of(service).refuse = {3: 1, 4: 2, 17: 1}
    result, _ = service.run(JOB, Budget.unbounded(clock), "invocation-1")
    positions = sorted(m["position"] for m in queue_of(service).items())
    assert positions == list(range(done(result).items_in_scope))
    dedup_ids = [m.deduplication_id for m in queue_of(service).messages]
    assert len(set(dedup_ids)) == len(dedup_ids)


def test_a_unit_refused_three_times_is_publish_failed_and_the_rerun_finishes(
    service: ScopeJobService, clock: FakeClock
) -> None:
    service = replace(service, settings=ServiceSettings(safety_margin_seconds=1.0, unit_size=3))
    queue_of(service).refuse = {12: 3}
    with pytest.raises(PublishFailed, match="units \\[12\\]"):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")
    result, _ = service.run(JOB, Budget.unbounded(clock), "invocation-2")
    entries = [m["accountingEntryId"] for m in queue_of(service).items()]
    assert len(entries) == len(set(entries)) == done(result).items_in_scope
    assert sorted(m["unit"] for m in queue_of(service).bodies()) == list(range(24))


def test_a_job_that_is_not_claimed_touches_nothing(
    service: ScopeJobService, pleo: MemoryPleo, clock: FakeClock
) -> None:
    pleo.jobs[JOB_ID].status = "completed"
    with pytest.raises(JobNotClaimed, match="'completed'"):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")
    assert service.checkpoints.records == {}  # type: ignore[attr-defined]
    assert service.archive.objects == {}  # type: ignore[attr-defined]


def test_a_held_job_is_walk_in_progress(service: ScopeJobService, clock: FakeClock) -> None:
    service.checkpoints.leases[JOB_ID] = "someone-else"  # type: ignore[attr-defined]
    with pytest.raises(WalkInProgress):
        service.run(JOB, Budget.unbounded(clock), "invocation-1")


def test_out_of_time_hands_over_from_outside_step_functions_only(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    # A request's worst case is 6 s and each takes 1 s: a 9 s budget holds the job check
    # and three pages of the ten.
    pleo.jobs[JOB_ID].generated_items = 200
    result = continuing(service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger")[0])
    assert result.handed_over is not None
    assert result.handed_over.execution_arn.endswith(f"{JOB_ID}-r1-h1-g0")
    assert result.payload()["continuation"] == {"runId": 1, "handOver": 1}
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]

    looped, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "loop-1", ticket=LOOP)
    assert continuing(looped).handed_over is None
    assert "handedOver" not in looped.payload()
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]
    assert looped.pages_fetched > result.pages_fetched > 0

    final, _ = service.run(JOB, Budget.unbounded(clock), "loop-2", ticket=LOOP)
    assert final.done is True
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)


def test_the_hand_over_starts_the_loop_with_the_continuation_and_the_wait(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.defer = [90.5]  # the job check: Pleo asks for 90.5 s
    result = continuing(service.run(JOB, Budget.unbounded(clock), "trigger")[0])
    assert (result.pages_fetched, result.wait_seconds) == (0, 91)
    (loop,) = service.hand_over.inputs  # type: ignore[attr-defined]
    assert loop.payload() == {
        "jobId": JOB_ID,
        "companyId": None,
        "continuation": {"runId": 1, "handOver": 1},
        "waitSeconds": 91,
        "loop": {"iteration": 0, "generation": 0, "namePrefix": f"scope-{JOB_ID}-r1-h1"},
    }


def test_publishing_stops_on_the_budget_and_resumes_at_the_published_position(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.jobs[JOB_ID].generated_items = 400  # about 280 in scope: 29 units of 10, 3 batches

    class SlowQueue(MemoryQueue):
        def send_batch(self, messages):  # type: ignore[no-untyped-def]
            clock.sleep(20.0)  # each batch takes 20 s
            return super().send_batch(messages)

    service = replace(
        service,
        settings=ServiceSettings(safety_margin_seconds=1.0, unit_size=10),
        queue=SlowQueue(),
    )
    result = continuing(service.run(JOB, Budget.from_remaining(clock, 60.0), "trigger")[0])
    assert result.phase == "scoped"
    assert result.items_published == 100  # one batch of 10 units
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop", ticket=LOOP)
    positions = [m["position"] for m in queue_of(service).items()]
    assert positions == list(range(done(final).items_in_scope))


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
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.jobs[JOB_ID].generated_items = 200  # 10 pages of 20, 3 per 9-second invocation
    service = replace(service, archive=SlowReads(clock, seconds=0.8))
    results = [service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger")[0]]
    while continuing(results[-1]).phase == "walking":
        owner = f"loop-{len(results)}"
        results.append(service.run(JOB, Budget.from_remaining(clock, 9.0), owner, LOOP)[0])
    # The last page came 2 s into the invocation; 8 pages read back at 0.8 s each leave
    # too little for the other 2 (projected from that rate) and the margin: not now.
    assert [r.pages_fetched for r in results] == [3, 6, 9, 10]
    assert continuing(results[-1]).phase == "walked"
    # A fresh invocation that walked nothing rebuilds whatever the projection says.
    rebuilt, _ = service.run(JOB, Budget.from_remaining(clock, 9.0), "loop-5", LOOP)
    assert continuing(rebuilt).phase == "scoped"  # 1 + 8 s of 9: the publish is left to the next
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop-6", LOOP)
    assert final.done is True


def test_a_trigger_adopts_the_running_execution_and_touches_nothing(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.jobs[JOB_ID].generated_items = 200
    first = continuing(service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-1")[0])
    requests = len(pleo.log)
    again = continuing(service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-2")[0])
    assert first.handed_over is not None
    assert again.payload()["handedOver"] == {
        "executionArn": first.handed_over.execution_arn,
        "adopted": True,
    }
    assert again.pages_fetched == first.pages_fetched
    assert len(pleo.log) == requests  # no Pleo call
    assert service.hand_over.started == [(JOB_ID, 1, 1)]  # type: ignore[attr-defined]


def test_a_trigger_takes_over_from_a_closed_execution_and_hands_over_anew(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.jobs[JOB_ID].generated_items = 200
    service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-1")
    # The loop's invocation dies holding the lease, and its execution ends.
    checkpoints = service.checkpoints
    checkpoints.leases[JOB_ID] = "killed-loop-invocation"  # type: ignore[attr-defined]
    checkpoints.lease_hand_overs[JOB_ID] = 1  # type: ignore[attr-defined]
    service.hand_over.close_all()  # type: ignore[attr-defined]
    again = continuing(service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger-2")[0])
    assert again.pages_fetched == 6  # went on from the checkpoint
    assert again.handed_over is not None
    assert again.handed_over.execution_arn.endswith("-r1-h2-g0")
    assert again.payload()["continuation"] == {"runId": 1, "handOver": 2}
    started = service.hand_over.started  # type: ignore[attr-defined]
    assert started == [(JOB_ID, 1, 1), (JOB_ID, 1, 2)]
    # The first hand-over's execution, were it to run again, is told it is superseded.
    with pytest.raises(WalkSuperseded, match="hand-over 2 owns the walk"):
        service.run(JOB, Budget.unbounded(clock), "late-loop", ticket=LOOP)
    final, _ = service.run(JOB, Budget.unbounded(clock), "loop", ticket=LoopTicket(1, 2))
    assert final.done is True
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)


def test_a_lease_held_by_a_live_trigger_is_respected(
    service: ScopeJobService, clock: FakeClock
) -> None:
    service.checkpoints.leases[JOB_ID] = "another-trigger"  # type: ignore[attr-defined]
    with pytest.raises(WalkInProgress):
        service.run(JOB, Budget.unbounded(clock), "loop", ticket=LOOP)


def test_a_wait_past_any_cap_waits_at_most_a_day(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    pleo.defer = [math.inf]  # the job check: Pleo asks for a wait longer than any cap
    result = continuing(service.run(JOB, Budget.unbounded(clock), "trigger")[0])
    assert result.wait_seconds == 86_400
    (loop,) = service.hand_over.inputs  # type: ignore[attr-defined]
    assert loop.wait_seconds == 86_400


class CountedReads(MemoryArchive):
    """Counts the archived pages read back."""

    def __init__(self) -> None:
        super().__init__()
        self.pages_read = 0

    def read_pages(
        self, job_id: str, run_id: int, count: int
    ) -> Generator[list[JsonObject], None, None]:
        for items in super().read_pages(job_id, run_id, count):
            self.pages_read += 1
            yield items


def walked_three_pages_then_loop(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo, **settings: int
) -> tuple[ScopeJobService, CountedReads]:
    """The job's first 3 of 10 pages walked by a trigger's 9-second invocation."""
    pleo.jobs[JOB_ID].generated_items = 200
    archive = CountedReads()
    service = replace(
        service,
        archive=archive,
        settings=ServiceSettings(safety_margin_seconds=1.0, **settings),
    )
    first = continuing(service.run(JOB, Budget.from_remaining(clock, 9.0), "trigger")[0])
    assert (first.phase, first.pages_fetched) == ("walking", 3)
    return service, archive


def test_the_loop_reads_back_only_the_pages_walked_before_it(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    service, archive = walked_three_pages_then_loop(service, clock, pleo)
    result = done(service.run(JOB, Budget.from_remaining(clock, 900.0), "loop", LOOP)[0])
    assert result.pages_fetched == 10
    assert archive.pages_read == 3  # not the 10 a rebuild at the end reads
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)


def test_a_walk_longer_than_the_prefix_limit_is_rebuilt_at_its_end(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    service, archive = walked_three_pages_then_loop(service, clock, pleo, prefix_read_max_pages=2)
    done(service.run(JOB, Budget.from_remaining(clock, 900.0), "loop", LOOP)[0])
    assert archive.pages_read == 10
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)


def test_a_short_invocation_leaves_the_pages_walked_before_to_the_rebuild(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    service, archive = walked_three_pages_then_loop(service, clock, pleo)
    # 59 s: less than reading back may take from a loop invocation's walk
    done(service.run(JOB, Budget.from_remaining(clock, 59.0), "loop", LOOP)[0])
    assert archive.pages_read == 10
    assert service.archive.get_scope(JOB_ID, 1) == expected(pleo)


def test_a_page_walked_before_missing_from_the_archive_walks_the_job_again(
    service: ScopeJobService, clock: FakeClock, pleo: MemoryPleo
) -> None:
    service, archive = walked_three_pages_then_loop(service, clock, pleo)
    del archive.objects[f"{JOB_ID}/pages/1/2"]
    pleo.log.clear()
    again = continuing(service.run(JOB, Budget.from_remaining(clock, 900.0), "loop", LOOP)[0])
    assert (again.phase, again.pages_fetched) == ("walking", 0)
    assert archive.pages_read == 1  # page 1, then page 2 is missing
    assert [endpoint for endpoint, _ in pleo.log] == ["job"]  # its check; no page walked
    final = done(service.run(JOB, Budget.unbounded(clock), "loop-2", LOOP)[0])
    assert final.run_id == 2
    assert service.archive.get_scope(JOB_ID, 2) == expected(pleo)
