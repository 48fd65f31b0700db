"""The publish step: enqueue the scope in order, skipping what the ledger says was enqueued
before, and checkpoint progress so that a retry resumes where this one stopped."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import batched

from pleo_scope.clock import Budget
from pleo_scope.errors import PublishFailed
from pleo_scope.invocation import InvocationStats
from pleo_scope.ports import (
    CheckpointStore,
    OutgoingMessage,
    PublishLedger,
    ScopeQueue,
    StepObserver,
    WalkState,
)
from pleo_scope.scope import ScopeEntry, iter_entries

SQS_BATCH = 10
LEDGER_CHUNK = 100  # one ledger read per 100 entries
SEND_ATTEMPTS = 3


@dataclass
class Publisher:
    checkpoints: CheckpointStore
    queue: ScopeQueue
    ledger: PublishLedger
    observer: StepObserver
    safety_margin_seconds: float

    def publish(
        self, state: WalkState, jsonl: bytes, budget: Budget, stats: InvocationStats
    ) -> tuple[WalkState, bool]:
        """Enqueue the scope from `items_published` on. The ledger skips what an earlier
        attempt already sent; SQS deduplication covers a crash between send and record."""
        slowest_chunk = 0.0
        clock = budget.clock
        for chunk in batched(iter_entries(jsonl, start=state.items_published), LEDGER_CHUNK):
            if not budget.allows(slowest_chunk + self.safety_margin_seconds):
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
