"""The month-end storm's mix of invocations on one rate-budget store, in simulated time: what
the fleet-wide limiter costs, in store calls per Pleo request, when many small jobs (one
invocation each), long walks (an admission slice, then the loop) and one company with several
jobs at once share the fleet's containers.

The product's limiter runs as in Lambda: each container has its own `FleetRateLimiter` (one
budget object per company, kept across the container's invocations), an invocation takes a
slot before each request and ends with `release()`, as the wiring's `releasing_rate_slots`
does; a warm container is reused before a new one is made. Time is simulated (requests of
`latency` seconds, one after another per walk; sleeps move no wall clock), so a storm of
minutes runs in moments; the store is whatever is passed (in memory, or DynamoDB on moto):
its calls are the figure. Reservations ahead run inline (a background thread in the
product): how many blocks a request had to wait for is counted instead (`blocks_waited`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Literal

from pleo_scope.clock import Budget
from pleo_scope.rate_budget import (
    BlockPolicy,
    BudgetStats,
    FleetRateLimiter,
    RateBudgetStore,
    SlotUnavailable,
)
from tooling.testkit.inline_executor import InlineExecutor

BEFORE_POLICY = BlockPolicy(max_block_seconds=2.0, ahead_seconds=1.0, give_back_seconds=0.0)
"""The limiter's policy before issue 21's cost work, for comparison: blocks of 2 s only, the
next one reserved at half a block, every leftover given back at each invocation's end."""
EPOCH = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
LOOP_SECONDS = 900.0
"""A loop invocation's time-out: longer than any walk of the mix."""


@dataclass(frozen=True, slots=True)
class Mix:
    """The storm's shape (bench_fleet's defaults)."""

    small_jobs: int = 29
    small_pages: int = 3
    large_jobs: int = 10
    large_pages: int = 200
    multi_jobs: int = 3
    """Jobs of one company at once."""
    multi_pages: int = 50
    per_minute: float = 291.0
    """Each company's budget (its registry record's maxRequestsPerMinute)."""
    latency: float = 0.1
    """Each request's time, Pleo's and the walk's own (a starved process takes longer)."""
    slice_seconds: float = 3.0
    admission_concurrency: int = 8
    loop_start_seconds: float = 0.5
    """From a hand-over to the loop's invocation (Step Functions starting it)."""
    seed: int = 21


@dataclass
class MixResult:
    requests: int
    store_calls: int
    invocations: int
    simulated_seconds: float
    budgets: BudgetStats
    max_rate_ratio: float
    """The most requests of one company in any 10 s, over a sixth of its per-minute limit."""
    floor_calls: int
    """Each company's requests in blocks of `FLOOR_BLOCK` (the default policy's longest),
    one call each, nothing given back: fewer calls than any limiter of blocks that long."""

    @property
    def calls_per_request(self) -> float:
        return self.store_calls / max(self.requests, 1)


@dataclass
class _World:
    t: float = 0.0


@dataclass
class _ContainerClock:
    """The world's time for one container; a sleep is only noted (the scheduler moves time)."""

    world: _World
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.world.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.world.t)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


@dataclass
class _Container:
    limiter: FleetRateLimiter
    clock: _ContainerClock


@dataclass
class _Job:
    company: str
    pages_left: int
    """Pages, then the re-check of the job when the walk is complete."""


@dataclass
class _Invocation:
    job: _Job
    kind: Literal["admission", "loop"]
    container: _Container
    deadline: float
    checked: bool = False
    """Each invocation checks the job before it walks."""


@dataclass
class _Storm:
    mix: Mix
    policy: BlockPolicy
    store: RateBudgetStore
    world: _World = field(default_factory=_World)
    events: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    order: itertools.count[int] = field(default_factory=itertools.count)
    warm: list[_Container] = field(default_factory=list)
    containers: list[_Container] = field(default_factory=list)
    queue: list[_Job] = field(default_factory=list)
    admitting: int = 0
    invocations: int = 0
    starts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.events, (t, next(self.order), action))

    def run(self) -> None:
        self.admit()
        while self.events:
            t, _, action = heapq.heappop(self.events)
            self.world.t = max(self.world.t, t)
            action()

    def admit(self) -> None:
        while self.queue and self.admitting < self.mix.admission_concurrency:
            self.admitting += 1
            self.invoke(self.queue.pop(0), "admission")

    def invoke(self, job: _Job, kind: Literal["admission", "loop"]) -> None:
        container = self.warm.pop() if self.warm else self.new_container()
        length = self.mix.slice_seconds if kind == "admission" else LOOP_SECONDS
        invocation = _Invocation(job, kind, container, self.world.t + length)
        self.invocations += 1
        self.at(self.world.t, lambda: self.request(invocation))

    def new_container(self) -> _Container:
        clock = _ContainerClock(self.world)
        # A thread pool made per container would outlive the run: reserve inline.
        limiter = FleetRateLimiter(
            self.store, clock, "company", self.mix.per_minute, self.policy, InlineExecutor()
        )
        container = _Container(limiter, clock)
        self.containers.append(container)
        return container

    def request(self, invocation: _Invocation) -> None:
        job, clock = invocation.job, invocation.container.clock
        if invocation.checked and job.pages_left == 0:
            self.end(invocation, None)
            return
        if invocation.kind == "admission" and self.world.t >= invocation.deadline:
            self.end(invocation, 0.0)  # the slice is over: the loop goes on with the walk
            return
        budget = invocation.container.limiter.budget(job.company, self.mix.per_minute)
        clock.slept = 0.0
        try:
            budget.take(Budget(clock, invocation.deadline), self.mix.latency)
        except SlotUnavailable as unavailable:
            self.end(invocation, unavailable.wait_seconds)
            return
        start = self.world.t + clock.slept
        self.starts[job.company].append(start)
        if invocation.checked:
            job.pages_left -= 1
        invocation.checked = True
        self.at(start + self.mix.latency, lambda: self.request(invocation))

    def end(self, invocation: _Invocation, wait: float | None) -> None:
        """`wait` None: the job is done; else the loop goes on with it after that wait."""
        invocation.container.limiter.release()
        self.warm.append(invocation.container)
        if wait is not None:
            job = invocation.job
            self.at(
                self.world.t + max(self.mix.loop_start_seconds, wait),
                lambda: self.invoke(job, "loop"),
            )
        if invocation.kind == "admission":
            self.admitting -= 1
            self.admit()


def jobs_of(mix: Mix) -> list[_Job]:
    """The triggers in their order of arrival: the large walks (and the busy company's jobs)
    among the first, the small jobs after them, each group shuffled with the mix's seed."""
    rng = random.Random(mix.seed)
    first = [_Job(f"large-{n}", mix.large_pages + 1) for n in range(mix.large_jobs)]
    first += [_Job("busy", mix.multi_pages + 1) for _ in range(mix.multi_jobs)]
    rest = [_Job(f"small-{n}", mix.small_pages + 1) for n in range(mix.small_jobs)]
    rng.shuffle(first)
    rng.shuffle(rest)
    return first + rest


def run_mix(
    store: RateBudgetStore,
    store_calls: Callable[[], int],
    policy: BlockPolicy,
    mix: Mix = Mix(),
    *,
    prefix: str = "",
) -> MixResult:
    """Run the mix on `store` (company keys named with `prefix`, so runs on one table stay
    apart); `store_calls` reads the store's call count."""
    storm = _Storm(mix, policy, store)
    storm.queue = jobs_of(mix)
    for job in storm.queue:
        job.company = prefix + job.company
    calls_before = store_calls()
    storm.run()
    stats = BudgetStats()
    for container in storm.containers:
        for name in (f.name for f in fields(BudgetStats)):
            part = getattr(container.limiter.stats(), name)
            setattr(stats, name, getattr(stats, name) + part)
    longest = BlockPolicy().max_block(60.0 / mix.per_minute)
    per_company = {company: len(starts) for company, starts in storm.starts.items()}
    return MixResult(
        requests=sum(per_company.values()),
        store_calls=store_calls() - calls_before,
        invocations=storm.invocations,
        simulated_seconds=storm.world.t,
        budgets=stats,
        max_rate_ratio=max(
            _most_in_any_window(sorted(starts), 10.0) / (mix.per_minute / 6)
            for starts in storm.starts.values()
        ),
        floor_calls=sum(math.ceil(n / longest) for n in per_company.values()),
    )


def _most_in_any_window(starts: list[float], window: float) -> int:
    most, first = 0, 0
    for last, start in enumerate(starts):
        while starts[first] <= start - window + 1e-6:  # the timeline counts microseconds
            first += 1
        most = max(most, last - first + 1)
    return most
