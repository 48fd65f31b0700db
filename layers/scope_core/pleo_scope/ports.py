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
    accounting_entry_id: str
    position: int
    body: str
    group_id: str
    deduplication_id: str


class ScopeQueue(Protocol):
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        """Send up to 10 messages; returns those that failed."""
        ...


class PublishLedger(Protocol):
    def already_enqueued(self, job_id: str, entry_ids: Sequence[str]) -> set[str]: ...

    def record(self, job_id: str, run_id: int, messages: Sequence[OutgoingMessage]) -> None: ...


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
