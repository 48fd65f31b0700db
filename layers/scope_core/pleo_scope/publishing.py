"""The publish step (contract v2 units, v3 bodies): cut the items to enqueue into work
units, send them in unit order, and record each SendMessageBatch in the ledger together with
the checkpoint's unit progress, so that a retry resumes at the first unit not yet recorded.

The items to enqueue are the scope less every item an earlier run of the job enqueued. They
are fixed for the whole run (a run's scope and its earlier runs' ledger do not change), so
unit numbers, unit bounds and deduplication ids are the same in every invocation that
resumes the publish, and after SQS refused some units of a batch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import batched

from pleo_scope.clock import Budget, Clock
from pleo_scope.errors import PublishFailed, UnitTooLarge
from pleo_scope.invocation import InvocationStats, ServiceSettings
from pleo_scope.ports import (
    CheckpointStore,
    OutgoingMessage,
    PublishLedger,
    ScopeArchive,
    ScopeQueue,
    StepObserver,
    UnitRecord,
    WalkState,
)
from pleo_scope.scope import ScopeEntry, iter_entries

SQS_BATCH = 10
SQS_BATCH_BYTES = 262_144
"""SendMessageBatch's payload limit (sum of the bodies) as SQS has long had it; AWS raised
both limits to 1 MiB in 2025, so batches packed to this fit either."""
SQS_MESSAGE_BYTES = 1_048_576
SEND_ATTEMPTS = 3
HASH_BYTES = 16


def entry_hash(accounting_entry_id: str) -> bytes:
    """128 bits of sha256: what the ledger keeps of an id (ids may hold lone surrogates)."""
    return hashlib.sha256(accounting_entry_id.encode("utf-8", "surrogatepass")).digest()[
        :HASH_BYTES
    ]


@dataclass(frozen=True, slots=True)
class Unit:
    index: int
    entries: tuple[ScopeEntry, ...]
    id_hashes: bytes
    """The entries' hashes, concatenated: the ledger's record and the deduplication id."""

    def record(self) -> UnitRecord:
        return UnitRecord(self.index, self.entries[0].position, len(self.entries), self.id_hashes)


@dataclass
class Publisher:
    checkpoints: CheckpointStore
    queue: ScopeQueue
    ledger: PublishLedger
    archive: ScopeArchive
    observer: StepObserver
    settings: ServiceSettings

    def publish(
        self, state: WalkState, jsonl: bytes, budget: Budget, stats: InvocationStats
    ) -> tuple[WalkState, bool]:
        """Send the units the ledger lacks, batch by batch, while the budget allows; once all
        are out, write the job's pointer to this run (last: it names a run fully out)."""
        earlier: set[bytes] = set()  # a first run has no earlier one's items to leave out
        if state.run_id > 1:
            earlier = self.ledger.enqueued_before(state.job_id, state.run_id)
        recorded: set[int] = set()
        if state.unit_size is None or state.unit_count is None:
            # Planned here: no unit of the run can have gone out yet (the plan precedes them).
            state = self._plan(state, jsonl, earlier, stats)
        else:
            recorded = self.ledger.units_recorded(state.job_id, state.run_id, state.units_published)
        units = (
            unit
            for unit in self._units(state, jsonl, earlier)
            if unit.index >= state.units_published and unit.index not in recorded
        )
        slowest = 0.0
        clock = budget.clock
        # Local to this publish (the Publisher serves every invocation of its container):
        # when the lease was last proved held by a write conditional on it.
        proved = False
        for batch in self._batches(state, units):
            if not budget.allows(slowest + self.settings.safety_margin_seconds):
                return state, False
            started = clock.monotonic()
            state, proved = self._send_and_record(state, batch, recorded, stats, proved, clock)
            slowest = max(slowest, clock.monotonic() - started)
        # S3 cannot be conditional on the lease either: the last ledger write may prove it.
        self._confirm_unless_proved(state, proved, clock)
        self.archive.publish_pointer(state.job_id, state.run_id)
        return state, True

    def _confirm_unless_proved(self, state: WalkState, proved: bool, clock: Clock) -> None:
        """Only the lease holder writes what DynamoDB cannot guard (fencing). A ledger write
        just before, conditional on owner and run, proved them as the read would; the expiry
        is the one this invocation wrote when it took the lease."""
        if not (proved and clock.now().timestamp() < state.lease_expires_at):
            self.checkpoints.confirm(state)

    def _plan(
        self, state: WalkState, jsonl: bytes, earlier: set[bytes], stats: InvocationStats
    ) -> WalkState:
        """Fix the run's unit size and count before its first unit goes out."""
        in_scope = jsonl.count(b"\n")
        fresh = in_scope
        if earlier:
            fresh = sum(
                entry_hash(e.accounting_entry_id) not in earlier for e in iter_entries(jsonl)
            )
        stats.items_skipped_by_ledger += in_scope - fresh
        size = self.settings.unit_size
        count = -(-fresh // size)
        state = self.checkpoints.update(state, unit_size=size, unit_count=count, units_published=0)
        self.observer.on_step("units_planned", state.job_id, count)
        return state

    def _units(self, state: WalkState, jsonl: bytes, earlier: set[bytes]) -> Iterator[Unit]:
        size, first = state.unit_size or self.settings.unit_size, 0
        if not earlier:
            # Nothing filtered: the units before the checkpoint are skipped unparsed.
            first = state.units_published
        hashed = (
            (entry, entry_hash(entry.accounting_entry_id))
            for entry in iter_entries(jsonl, start=first * size)
        )
        if earlier:
            hashed = (pair for pair in hashed if pair[1] not in earlier)
        for index, chunk in enumerate(batched(hashed, size), first):
            yield Unit(index, tuple(e for e, _ in chunk), b"".join(h for _, h in chunk))

    def _batches(
        self, state: WalkState, units: Iterator[Unit]
    ) -> Iterator[list[tuple[Unit, OutgoingMessage]]]:
        """Up to 10 messages per SendMessageBatch, and no more bytes than it takes."""
        batch: list[tuple[Unit, OutgoingMessage]] = []
        size = 0
        for unit in units:
            message = self._message(state, unit)
            length = len(message.body.encode())
            if length > SQS_MESSAGE_BYTES:
                raise UnitTooLarge(
                    f"export job {state.job_id}: unit {unit.index} is {length} bytes, more than"
                    f" SQS's {SQS_MESSAGE_BYTES}; lower SCOPE_UNIT_SIZE ({state.unit_size})"
                )
            if batch and (len(batch) == SQS_BATCH or size + length > SQS_BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append((unit, message))
            size += length
        if batch:
            yield batch

    def _send_and_record(
        self,
        state: WalkState,
        batch: Sequence[tuple[Unit, OutgoingMessage]],
        recorded: set[int],
        stats: InvocationStats,
        proved: bool,
        clock: Clock,
    ) -> tuple[WalkState, bool]:
        """Send a batch, retrying what SQS refused (same ids: SQS drops a duplicate within
        5 minutes); each send's accepted units are recorded at once, with the checkpoint.
        Returns the state and whether the last call proved the lease held."""
        unit_of = {message.unit: unit for unit, message in batch}
        pending = [message for _, message in batch]
        for _ in range(SEND_ATTEMPTS):
            self._confirm_unless_proved(state, proved, clock)  # SQS cannot be conditional
            proved = False
            refused = self.queue.send_batch(pending)
            self.observer.on_step("batch_sent", state.job_id, pending[-1].unit)
            sent = [unit_of[m.unit] for m in pending if m not in refused]
            if sent:
                recorded.update(unit.index for unit in sent)
                published = state.units_published
                while published in recorded:
                    published += 1
                items = state.items_published + sum(len(unit.entries) for unit in sent)
                state = self.ledger.record(state, [u.record() for u in sent], published, items)
                proved = True
                self.observer.on_step("ledger_written", state.job_id, sent[-1].index)
                stats.units_enqueued += len(sent)
                stats.items_enqueued += sum(len(unit.entries) for unit in sent)
            pending = refused
            if not pending:
                return state, proved
        raise PublishFailed(
            f"SQS refused {len(pending)} unit(s) of export job {state.job_id}"
            f" after {SEND_ATTEMPTS} attempts (units {[m.unit for m in pending]})"
        )

    def _message(self, state: WalkState, unit: Unit) -> OutgoingMessage:
        location = self.archive.location(state.job_id, state.run_id)
        body = {
            "jobId": state.job_id,
            "companyId": state.company_id,
            "runId": state.run_id,
            "unit": unit.index,
            "unitCount": state.unit_count,
            "items": [
                {
                    "accountingEntryId": e.accounting_entry_id,
                    "status": e.status,
                    "position": e.position,
                }
                for e in unit.entries
            ],
            "scope": {"bucket": location.bucket, "key": location.key, "sha256": state.scope_sha256},
        }
        digest = hashlib.sha256(state.job_id.encode() + b"\n" + unit.id_hashes)
        return OutgoingMessage(
            unit=unit.index,
            # ASCII (\u escapes): a lone surrogate in an id stays valid JSON and valid SQS text.
            body=json.dumps(body, separators=(",", ":")),
            group_id=state.job_id,
            deduplication_id=digest.hexdigest(),
        )
