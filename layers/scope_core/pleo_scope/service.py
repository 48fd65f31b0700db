"""One invocation's worth of work on a claimed job: check it, walk on from the checkpoint,
build and write the scope, publish it. Knows the ports, not AWS or event shapes."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from itertools import batched
from typing import Any

from pleo_scope.clock import Budget, Clock, SystemClock
from pleo_scope.errors import JobNotClaimed, PublishFailed
from pleo_scope.models import CLAIMED
from pleo_scope.pleo_client import PleoClient
from pleo_scope.ports import (
    CheckpointStore,
    HandOver,
    NoObserver,
    OutgoingMessage,
    PublishLedger,
    ScopeArchive,
    ScopeQueue,
    StepObserver,
    WalkState,
)
from pleo_scope.scope import (
    Scope,
    ScopeBuilder,
    ScopeEntry,
    build_manifest,
    iter_entries,
    manifest_bytes,
)
from pleo_scope.walk import PageWalker, WalkOutcome

logger = logging.getLogger(__name__)

SQS_BATCH = 10
LEDGER_CHUNK = 100  # one ledger read per 100 entries
SEND_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    max_pages: int = 100_000
    safety_margin_seconds: float = 20.0
    """Kept free at the end of an invocation for the checkpoint, the hand-over and the reply."""
    rebuild_seconds_per_page: float = 0.01
    """Estimate for re-reading an archived page (parallel S3 GETs) when the scope is rebuilt."""


@dataclass
class InvocationStats:
    pages_fetched: int = 0
    items_seen: int = 0
    items_enqueued: int = 0
    items_skipped_by_ledger: int = 0
    pleo_retries: int = 0
    pleo_throttles: int = 0
    seconds: float = 0.0


@dataclass
class ScopeJobService:
    pleo: PleoClient
    checkpoints: CheckpointStore
    archive: ScopeArchive
    queue: ScopeQueue
    ledger: PublishLedger
    hand_over: HandOver
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    clock: Clock = field(default_factory=SystemClock)
    observer: StepObserver = field(default_factory=NoObserver)

    def run(
        self, job_id: str, budget: Budget, owner: str, continuing_run: int | None = None
    ) -> tuple[dict[str, Any], InvocationStats]:
        stats = InvocationStats()
        started = self.clock.monotonic()
        retries, throttles = self.pleo.stats.retries, self.pleo.stats.throttles
        try:
            result = self._run(job_id, budget, owner, continuing_run, stats)
        finally:
            stats.pleo_retries = self.pleo.stats.retries - retries
            stats.pleo_throttles = self.pleo.stats.throttles - throttles
            stats.seconds = self.clock.monotonic() - started
        return result, stats

    def _run(
        self,
        job_id: str,
        budget: Budget,
        owner: str,
        continuing_run: int | None,
        stats: InvocationStats,
    ) -> dict[str, Any]:
        job = self.pleo.get_job(job_id, budget)
        if job.status != CLAIMED:
            raise JobNotClaimed(job_id, job.status)
        self.observer.on_step("job_checked", job_id, 0)
        lease = budget.remaining() + self.settings.safety_margin_seconds
        state = self.checkpoints.begin(job_id, owner, min(lease, 3600.0), continuing_run)
        try:
            result = self._continue(state, budget, stats)
        finally:
            self.checkpoints.release(state)
        if not result["done"] and continuing_run is None:
            # Outside Step Functions: hand the rest of the walk to the state machine.
            arn = self.hand_over.start(job_id, result["continuation"]["runId"], result)
            result["handedOver"] = {"executionArn": arn}
        return result

    def _continue(self, state: WalkState, budget: Budget, stats: InvocationStats) -> dict[str, Any]:
        scope: Scope | None = None
        if state.phase == "walking":
            state, outcome, builder = self._walk(state, budget, stats)
            if not outcome.done:
                return self._continuation(state, outcome.wait_seconds)
            state = self.checkpoints.update(state, phase="walked")
            if builder is not None:
                scope = builder.build()
        if state.phase == "walked":
            if scope is None:
                if stats.pages_fetched and not budget.allows(self._rebuild_seconds(state)):
                    # This invocation spent its time walking: a fresh one rebuilds.
                    return self._continuation(state, 0.0)
                scope = self._rebuild(state)
            state = self._write_scope(state, scope)
        if state.phase == "scoped":
            jsonl = scope.jsonl if scope is not None else self.archive.get_scope(state.job_id)
            state, finished = self._publish(state, jsonl, budget, stats)
            if not finished:
                return self._continuation(state, 0.0)
            state = self.checkpoints.update(state, phase="published")
        return self._done(state)

    # -- walk ---------------------------------------------------------------------------

    def _walk(
        self, state: WalkState, budget: Budget, stats: InvocationStats
    ) -> tuple[WalkState, WalkOutcome, ScopeBuilder | None]:
        # Build the scope as pages arrive only when this invocation sees every page;
        # otherwise it is rebuilt from the archived pages once the walk is complete.
        builder = ScopeBuilder() if state.pages_fetched == 0 else None
        walker = PageWalker(
            self.pleo,
            state.job_id,
            budget,
            start=state.position,
            cursors=self.checkpoints.cursors(state),
            max_pages=self.settings.max_pages,
            safety_margin=self.settings.safety_margin_seconds,
        )
        for fetched in walker:
            self.archive.put_page(state.job_id, state.run_id, fetched.number, fetched.page.raw)
            self.observer.on_step("page_written", state.job_id, fetched.number)
            state = self.checkpoints.advance(state, fetched.next_position)
            self.observer.on_step("checkpoint_written", state.job_id, fetched.number)
            stats.pages_fetched += 1
            stats.items_seen += len(fetched.page.items)
            if builder is not None:
                builder.add_items(fetched.page.items)
        assert walker.outcome is not None  # set whenever iteration ends without raising
        return state, walker.outcome, builder

    def _rebuild_seconds(self, state: WalkState) -> float:
        per_page = self.settings.rebuild_seconds_per_page
        return self.settings.safety_margin_seconds + state.pages_fetched * per_page

    def _rebuild(self, state: WalkState) -> Scope:
        builder = ScopeBuilder()
        for items in self.archive.read_pages(state.job_id, state.run_id, state.pages_fetched):
            builder.add_items(items)
        return builder.build()

    def _write_scope(self, state: WalkState, scope: Scope) -> WalkState:
        manifest = build_manifest(
            state.job_id,
            scope,
            pages_fetched=state.pages_fetched,
            started_at=datetime.fromisoformat(state.started_at),
            completed_at=self.clock.now(),
        )
        self.archive.put_scope(state.job_id, scope.jsonl, manifest_bytes(manifest))
        self.observer.on_step("scope_written", state.job_id, scope.item_count)
        return self.checkpoints.update(
            state,
            phase="scoped",
            items_in_scope=scope.item_count,
            scope_sha256=scope.sha256,
            items_published=0,
        )

    # -- publish ------------------------------------------------------------------------

    def _publish(
        self, state: WalkState, jsonl: bytes, budget: Budget, stats: InvocationStats
    ) -> tuple[WalkState, bool]:
        """Enqueue the scope from `items_published` on. The ledger skips what an earlier
        attempt already sent; SQS deduplication covers a crash between send and record."""
        slowest_chunk = 0.0
        clock = budget.clock
        for chunk in batched(iter_entries(jsonl, start=state.items_published), LEDGER_CHUNK):
            if not budget.allows(slowest_chunk + self.settings.safety_margin_seconds):
                return state, False
            started = clock.monotonic()
            sent_before = self.ledger.already_enqueued(
                state.job_id, [entry.accounting_entry_id for entry in chunk]
            )
            stats.items_skipped_by_ledger += len(sent_before)
            fresh = [e for e in chunk if e.accounting_entry_id not in sent_before]
            for batch in batched(fresh, SQS_BATCH):
                messages = [self._message(state, entry) for entry in batch]
                stats.items_enqueued += self._send_and_record(state, messages)
            state = self.checkpoints.update(state, items_published=chunk[-1].position + 1)
            slowest_chunk = max(slowest_chunk, clock.monotonic() - started)
        return state, True

    def _send_and_record(self, state: WalkState, messages: list[OutgoingMessage]) -> int:
        """Send a batch, retrying what SQS refused; whatever went through is recorded in the
        ledger at once, even when the rest is finally given up on."""
        pending, sent_count = messages, 0
        for _ in range(SEND_ATTEMPTS):
            refused = self.queue.send_batch(pending)
            sent = [m for m in pending if m not in refused]
            self.observer.on_step("batch_sent", state.job_id, pending[-1].position)
            if sent:
                self.ledger.record(state.job_id, state.run_id, sent)
                self.observer.on_step("ledger_written", state.job_id, sent[-1].position)
            sent_count += len(sent)
            pending = refused
            if not pending:
                return sent_count
        raise PublishFailed(
            f"SQS refused {len(pending)} message(s) of export job {state.job_id}"
            f" after {SEND_ATTEMPTS} attempts (positions {[m.position for m in pending]})"
        )

    @staticmethod
    def _message(state: WalkState, entry: ScopeEntry) -> OutgoingMessage:
        body = {
            "jobId": state.job_id,
            "accountingEntryId": entry.accounting_entry_id,
            "status": entry.status,
            "position": entry.position,
            "scopeSha256": state.scope_sha256,
        }
        key = f"{state.job_id}:{entry.accounting_entry_id}".encode()
        return OutgoingMessage(
            accounting_entry_id=entry.accounting_entry_id,
            position=entry.position,
            body=json.dumps(body, sort_keys=True, separators=(",", ":")),
            group_id=state.job_id,
            deduplication_id=hashlib.sha256(key).hexdigest(),
        )

    # -- results ------------------------------------------------------------------------

    def _continuation(self, state: WalkState, wait_seconds: float) -> dict[str, Any]:
        return {
            "jobId": state.job_id,
            "done": False,
            "phase": state.phase,
            "pagesFetched": state.pages_fetched,
            "itemsPublished": state.items_published,
            "waitSeconds": int(wait_seconds + 0.999),
            "continuation": {"runId": state.run_id},
        }

    def _done(self, state: WalkState) -> dict[str, Any]:
        location = self.archive.location(state.job_id)
        return {
            "jobId": state.job_id,
            "done": True,
            "itemsInScope": state.items_in_scope,
            "pagesFetched": state.pages_fetched,
            "scope": {
                "bucket": location.bucket,
                "key": location.key,
                "manifestKey": location.manifest_key,
            },
        }
