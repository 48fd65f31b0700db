"""What one invocation is given (its settings) and what it counts (its stats)."""

from __future__ import annotations

from dataclasses import dataclass

from pleo_scope.clock import Budget


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    max_pages: int = 100_000
    safety_margin_seconds: float = 20.0
    """Kept free at the end of an invocation for the checkpoint, the hand-over and the reply."""
    walk_pipeline_depth: int = 16
    """Pages fetched ahead of their checkpoint (archived and checkpointed behind the walk);
    0: the serial way, each page persisted before the next is requested."""
    checkpoint_interval_seconds: float = 1.0
    """The walk's checkpoint moves at most about this often (it covers every page done since);
    a crash fetches those pages again. 0: a write per page, or as fast as the writes go."""
    unit_size: int = 100
    """Items per work unit (one SQS message); Pleo's maximum per item-status PUT."""
    prefix_read_max_pages: int = 50
    """A loop invocation that goes on with a walk of at most this many pages (an admission
    slice's) reads them back before it walks and builds the scope as its pages arrive, instead
    of reading every page back once the walk is complete; 0: always the latter. Beyond it the
    read would be wasted too often (the invocation may not reach the end either)."""


@dataclass(frozen=True, slots=True)
class WalkSlice:
    """An invocation's share of capacity (admission): it walks until `budget` runs out, but
    not before `min_pages` pages, unless the job's size (`job_items` from the job check, or
    the pages' `total`) says the walk is longer than that and will not fit: then it hands
    over at once. A job it walked whole is then finished on the invocation's own time (its
    scope is a slice's pages), any other work stays within `budget`."""

    budget: Budget
    min_pages: int
    job_items: int | None = None
    """The job's `numberOfItems` as this invocation's check found it (None: not known)."""


@dataclass
class InvocationStats:
    pages_fetched: int = 0
    items_seen: int = 0
    items_enqueued: int = 0
    units_enqueued: int = 0
    items_skipped_by_ledger: int = 0
    pleo_retries: int = 0
    pleo_throttles: int = 0
    seconds: float = 0.0
    walk_started_at: str | None = None
    """When the run this invocation worked on started (ISO 8601 UTC), once its lease is held."""
    job_status: str | None = None
    """Pleo's status of the job at this invocation's last check of it."""
    job_items: int | None = None
    """The job's `numberOfItems` at that check (informative: Pleo's count)."""
    job_rechecked: bool = False
    """The job was checked again right before publishing."""
