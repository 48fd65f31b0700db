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

    @property
    def position(self) -> WalkPosition:
        return WalkPosition(self.after, self.pages_fetched)

    def but(self, **changes: Any) -> WalkState:
        return replace(self, **changes)


class CheckpointStore(Protocol):
    def begin(
        self, job_id: str, owner: str, lease_seconds: float, continuing_run: int | None
    ) -> WalkState:
        """Take the job's lease, or raise `WalkInProgress`. Starts a new run when there is
        none, or when the last one was published and this is not a loop invocation."""
        ...

    def advance(
        self, state: WalkState, position: WalkPosition, *, complete: bool = False
    ) -> WalkState:
        """Move the cursor one page on; fails if another invocation moved it meanwhile.
        `complete` (the last page) also moves the phase to `walked` in the same write, so
        that "first page" and "after the last page" are never confused."""
        ...

    def update(self, state: WalkState, **changes: Any) -> WalkState:
        """Persist phase and progress fields (under the lease)."""
        ...

    def release(self, state: WalkState) -> None: ...

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

    def put_scope(self, job_id: str, jsonl: bytes, manifest: bytes) -> ScopeLocation: ...

    def get_scope(self, job_id: str) -> bytes: ...

    def location(self, job_id: str) -> ScopeLocation: ...


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
    def start(self, job_id: str, run_id: int, loop_state: dict[str, Any]) -> str:
        """Start (or find) the job's Step Functions walk; returns the execution ARN."""
        ...


class StepObserver(Protocol):
    """Told of every step boundary: progress bars, metrics, and the tests' crash seam."""

    def on_step(self, step: str, job_id: str, number: int) -> None: ...


class NoObserver:
    def on_step(self, step: str, job_id: str, number: int) -> None:
        pass
