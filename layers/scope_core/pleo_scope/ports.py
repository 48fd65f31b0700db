"""What the scope service needs from the outside world, as protocols. The AWS adapters live in
`pleo_scope.aws`; in-memory fakes for unit tests in `tests/fakes.py`."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pleo_scope.models import JsonObject
from pleo_scope.walk import CursorRegistry, WalkPosition

Phase = Literal["walking", "walked", "scoped", "published"]
"""walking: pages still to fetch · walked: every page in S3 · scoped: scope.jsonl and
scope.json written · published: every in-scope item on the queue."""


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

    @property
    def position(self) -> WalkPosition:
        return WalkPosition(self.after, self.pages_fetched)

    def but(self, **changes: Any) -> WalkState:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class LoopTicket:
    """What a Step Functions loop invocation works for: a run, under one hand-over."""

    run_id: int
    hand_over: int
    execution_arn: str | None = None


class CheckpointStore(Protocol):
    def peek(self, job_id: str) -> WalkState | None:
        """The job's walk record as it stands, without taking the lease (`owner` is the
        lease holder's)."""
        ...

    def begin(
        self,
        job_id: str,
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
        self, state: WalkState, position: WalkPosition, *, complete: bool = False
    ) -> WalkState:
        """Move the cursor one page on; fails if another invocation moved it meanwhile.
        `complete` (the last page) also moves the phase to `walked` in the same write, so
        that "first page" and "after the last page" are never confused."""
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
        messages, the pointer). The table's own writes are conditional on the lease."""
        ...

    def release(self, state: WalkState) -> None: ...

    def record_final_error(self, job_id: str, owner: str, error: FinalError) -> None:
        """Keep the final error on the job's walk record, if there is one and no other
        invocation holds its lease; otherwise nothing."""
        ...

    def cursors(self, state: WalkState) -> CursorRegistry: ...


@dataclass(frozen=True, slots=True)
class ScopeLocation:
    bucket: str
    key: str
    manifest_key: str


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
    def execution_arn(self, job_id: str, run_id: int, hand_over: int) -> str:
        """The ARN the first execution of this hand-over gets (known before it starts)."""
        ...

    def start(self, job_id: str, run_id: int, hand_over: int, wait_seconds: int) -> bool:
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
