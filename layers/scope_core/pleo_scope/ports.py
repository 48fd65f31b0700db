"""What the scope service needs from the outside world, as protocols. The Pleo adapter is
`pleo_scope.pleo_client`, the AWS adapters live in `pleo_scope.aws`; in-memory fakes for unit
tests in `tests/fakes.py`. Importing this module loads no HTTP or AWS library."""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pleo_scope.clock import Budget
from pleo_scope.contract import (
    MAX_WAIT_SECONDS,
    ExecutionName,
    JobRef,
    LoopInput,
    LoopTicket,
    Phase,
    ScopeLocation,
)
from pleo_scope.errors import TransientPleoError
from pleo_scope.models import ExportJob, ItemPage, JsonObject

# -- Pleo -----------------------------------------------------------------------------------


class RetryDeferred(TransientPleoError):
    """The next attempt must wait longer than this invocation can (or may) sleep: a Pleo
    port raises it instead of sleeping, and the step ends with a continuation that waits."""

    def __init__(self, wait_seconds: float, reason: str) -> None:
        # Finite and within the loop's bound, whatever Pleo asked for (Retry-After: inf).
        wait_seconds = MAX_WAIT_SECONDS if math.isnan(wait_seconds) else wait_seconds
        wait_seconds = min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        super().__init__(f"{reason}; next attempt in {wait_seconds:.1f}s")
        self.wait_seconds = wait_seconds


@dataclass(slots=True)
class PleoStats:
    """What a Pleo port counts over its life (the service reports the deltas per invocation)."""

    requests: int = 0
    retries: int = 0
    throttles: int = 0
    paced_seconds: float = 0.0
    """Time spent waiting for a slot under the request rate limit."""
    timeouts: int = 0
    """Requests given up on at the time-out (Pleo may still have answered them)."""


@dataclass(frozen=True, slots=True)
class PagePace:
    """How fast a walk can go at best: pages of at most `page_size` items (the `limit` it
    asks for), one request every `seconds_per_request` at the least (its rate limit; 0:
    unpaced)."""

    page_size: int
    seconds_per_request: float

    def least_seconds(self, items: int) -> tuple[int, float]:
        """The pages `items` items take, and the least time their requests take."""
        pages = max(1, -(-items // self.page_size))
        return pages, pages * self.seconds_per_request


class Pleo(Protocol):
    """The two Export API reads the walk makes. Each call spends from `budget`; a wait that
    does not fit in it (or passes the cap) is `RetryDeferred`, never a sleep past the budget."""

    @property
    def stats(self) -> PleoStats: ...

    def get_job(self, job: JobRef, budget: Budget) -> ExportJob: ...

    def get_items_page(self, job: JobRef, after: str | None, budget: Budget) -> ItemPage: ...

    def pace(self, job: JobRef) -> PagePace:
        """The pace `job`'s walk goes at best (its company's page size and rate limit)."""
        ...


# -- the walk's checkpoint ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalkPosition:
    """Where a walk stands: the cursor of the next request (None = first page)."""

    after: str | None = None
    pages_fetched: int = 0


@dataclass(frozen=True, slots=True)
class FollowedCursor:
    """A page's `endCursor`, which the walk followed to page `page_number` + 1."""

    cursor: str
    page_number: int


class CursorRegistry(Protocol):
    """Remembers which page each followed cursor led to (the walker's, within an invocation;
    the checkpoint store keeps them across the whole walk)."""

    def record(self, cursor: str, page_number: int) -> bool:
        """False when `cursor` was already recorded for a different page (a cursor loop).

        Recording the same cursor for the same page again is allowed: that is a page
        fetched twice because a crash came between its fetch and its checkpoint.
        """
        ...


@dataclass(frozen=True, slots=True)
class FinalError:
    """The final error that ended a job's run, kept on its walk record for the operator: a
    re-sent trigger does not continue such a walk (it may, once the cause is fixed)."""

    name: str
    """The error's class name (the name Step Functions matches)."""
    cause: str
    job_status: str | None
    """Pleo's status of the job when it was last checked (None: not checked)."""
    at: str
    """When (ISO 8601 UTC)."""


@dataclass(frozen=True, slots=True)
class WalkState:
    """The checkpoint of one job: constant size, whatever the job's size."""

    job_id: str
    run_id: int
    phase: Phase
    after: str | None
    pages_fetched: int
    items_published: int
    started_at: str
    owner: str
    items_in_scope: int | None = None
    scope_sha256: str | None = None
    unit_size: int | None = None
    """Fixed when the run's publish starts, so a changed setting cannot move unit bounds."""
    unit_count: int | None = None
    units_published: int = 0
    """Every unit below this one is on the queue and in the ledger (same atomic write)."""
    hand_overs: int = 0
    """How many times a trigger handed this job's walk to Step Functions: the number of the
    current hand-over, which names its executions and is what a loop invocation works for."""
    execution_arn: str | None = None
    """The execution that owns the walk since the last hand-over (its newest generation)."""
    lease_expires_at: int = 0
    lease_hand_over: int | None = None
    """The hand-over whose loop invocation holds the lease; None for a trigger."""
    final_error: FinalError | None = None
    """Set when the run ended on a final error; cleared when an invocation takes the lease."""
    company_id: str | None = None
    """The job's company (None: the default tenant)."""

    @property
    def job(self) -> JobRef:
        return JobRef(self.job_id, self.company_id)

    @property
    def position(self) -> WalkPosition:
        return WalkPosition(self.after, self.pages_fetched)

    def but(self, **changes: Any) -> WalkState:
        return replace(self, **changes)


class CheckpointStore(Protocol):
    def peek(self, job: JobRef) -> WalkState | None:
        """The job's walk record as it stands, without taking the lease (`owner` is the
        lease holder's)."""
        ...

    def begin(
        self,
        job: JobRef,
        owner: str,
        lease_seconds: float,
        ticket: LoopTicket | None,
        *,
        take_over_from: int | None = None,
    ) -> WalkState:
        """Take the job's lease, or raise `WalkInProgress`. Starts a new run when there is
        none, or when the last one was published and this is not a loop invocation.

        A lease held by a loop invocation of hand-over `take_over_from` (whose execution is
        closed) is taken over before it expires. Any other live lease is respected, that of
        an invocation of the ticket's own hand-over included (fencing: a retried task's
        first attempt may still run)."""
        ...

    def advance(
        self,
        state: WalkState,
        position: WalkPosition,
        *,
        complete: bool = False,
        followed: Sequence[FollowedCursor] = (),
    ) -> WalkState:
        """Move the cursor on over the pages walked since; fails if another invocation moved
        it meanwhile. `complete` (the last page) also moves the phase to `walked` in the same
        write, so that "first page" and "after the last page" are never confused.

        `followed` (the cursors of the pages it moves over, at most 99) are recorded for the
        run in the same write: when one was recorded for another page before (a cursor loop
        that spans invocations), `RepeatedCursor` and nothing moves. The same cursor for the
        same page again is allowed: a page fetched twice because a crash came between its
        fetch and its checkpoint."""
        ...

    def restart(self, state: WalkState) -> WalkState:
        """Start a new run of the walk (under the lease): its archive could not be read."""
        ...

    def update(self, state: WalkState, **changes: Any) -> WalkState:
        """Persist phase and progress fields (under the lease)."""
        ...

    def confirm(self, state: WalkState) -> None:
        """Raise `WalkInProgress` unless this invocation still holds the lease: asked right
        before each write the table cannot make conditional (the scope files, each batch of
        messages, the pointer). The table's own writes are conditional on the lease. A store
        may answer without a read where nobody else can have taken the lease (a trigger's,
        well before its expiry)."""
        ...

    def release(self, state: WalkState) -> None: ...

    def finish(self, state: WalkState) -> WalkState:
        """The run is published: its phase and the lease's release in one write (conditional
        on the lease, as `update`); `release` has nothing left to do after it."""
        ...

    def record_final_error(self, job: JobRef, owner: str, error: FinalError) -> None:
        """Keep the final error on the job's walk record, if there is one and no other
        invocation holds its lease; otherwise nothing."""
        ...


class ScopeArchive(Protocol):
    def put_page(self, job_id: str, run_id: int, number: int, raw: bytes) -> None: ...

    def read_pages(
        self, job_id: str, run_id: int, count: int
    ) -> Generator[list[JsonObject], None, None]:
        """Items of pages 1..count, in page order; closing it stops the reads in flight."""
        ...

    def put_scope(
        self, job_id: str, run_id: int, jsonl: bytes, manifest: bytes, sha256: str
    ) -> ScopeLocation:
        """Write the run's scope.jsonl, then its manifest, each once (contract v3: a run's
        files are never overwritten). Raises `ScopeConflict` when the run's scope.jsonl
        exists with another sha256."""
        ...

    def publish_pointer(self, job_id: str, run_id: int) -> None:
        """Make the job's pointer a copy of the run's manifest: the last write of a run."""
        ...

    def get_scope(self, job_id: str, run_id: int) -> bytes: ...

    def location(self, job_id: str, run_id: int) -> ScopeLocation:
        """The run's scope.jsonl and manifest."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One work unit's message (contract v2)."""

    unit: int
    body: str
    group_id: str
    deduplication_id: str


class ScopeQueue(Protocol):
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        """Send up to 10 messages in one call; returns those that failed."""
        ...


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """What the ledger keeps of one enqueued unit: never the ids themselves, but a 128-bit
    hash of each (any id length fits DynamoDB's key and item limits)."""

    unit: int
    first_position: int
    item_count: int
    id_hashes: bytes
    """The items' 16-byte hashes, concatenated in scope order."""


class PublishLedger(Protocol):
    def enqueued_before(self, job_id: str, run_id: int) -> set[bytes]:
        """The hashes of every item that an earlier run of the job enqueued."""
        ...

    def units_recorded(self, job_id: str, run_id: int, from_unit: int) -> set[int]:
        """The units of this run recorded at or after `from_unit`."""
        ...

    def record(
        self, state: WalkState, units: Sequence[UnitRecord], units_published: int, items: int
    ) -> WalkState:
        """Record the units and move the walk record's unit progress (`units_published`,
        `items_published`) in ONE atomic write under the lease, so the checkpoint never
        claims a unit the ledger lacks. Raises `WalkInProgress` when the lease is lost."""
        ...


class HandOver(Protocol):
    def execution_arn(self, name: ExecutionName) -> str:
        """The ARN the execution of that name gets (known before it starts)."""
        ...

    def start(self, loop: LoopInput) -> bool:
        """Start the hand-over's first execution. False when its name is already taken by
        an execution that is no longer running."""
        ...

    def running_execution(self, execution_arn: str) -> str | None:
        """The running execution of that execution's hand-over (itself, or the generation
        it continued as), or None when the hand-over's walk is no longer running."""
        ...


class StepObserver(Protocol):
    """Told of every step boundary: progress bars, metrics, and the tests' crash seam."""

    def on_step(self, step: str, job_id: str, number: int) -> None: ...


class NoObserver:
    def on_step(self, step: str, job_id: str, number: int) -> None:
        pass
