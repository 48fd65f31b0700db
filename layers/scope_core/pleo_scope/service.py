"""One invocation's worth of work on a claimed job: check it, walk on from the checkpoint,
build and write the scope, publish it. Knows the ports, not AWS or event shapes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pleo_scope.clock import Budget, Clock, SystemClock
from pleo_scope.contract import (
    Continuation,
    Continuing,
    Done,
    JobRef,
    LoopTicket,
    StepResult,
    wait_for_step_functions,
)
from pleo_scope.errors import (
    FINAL_ERRORS,
    ArchivedPageMissing,
    JobNotClaimed,
    JobNotFound,
    ScopeConflict,
)
from pleo_scope.invocation import InvocationStats, ServiceSettings, WalkSlice
from pleo_scope.models import CLAIMED
from pleo_scope.ownership import Ownership, adopted
from pleo_scope.ports import (
    CheckpointStore,
    FinalError,
    HandOver,
    NoObserver,
    Pleo,
    PublishLedger,
    RetryDeferred,
    ScopeArchive,
    ScopeQueue,
    StepObserver,
    WalkState,
)
from pleo_scope.publishing import Publisher
from pleo_scope.scope import Scope, build_manifest, iso_utc, manifest_bytes
from pleo_scope.tenants_access import require_walked_as
from pleo_scope.walking import WalkStep

__all__ = ["InvocationStats", "ScopeJobService", "ServiceSettings"]

logger = logging.getLogger(__name__)

MAX_LEASE_SECONDS = 3600.0
MAX_CAUSE_CHARS = 2000


@dataclass(frozen=True)
class ScopeJobService:
    """Immutable: its steps are built once from its ports. A tool or test that injects a
    fault gets a service with other ports (`with_ports`, or `Wiring.injected` for the
    handler's), never changes this one under a running invocation."""

    pleo: Pleo
    checkpoints: CheckpointStore
    archive: ScopeArchive
    queue: ScopeQueue
    ledger: PublishLedger
    hand_over: HandOver
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    clock: Clock = field(default_factory=SystemClock)
    observer: StepObserver = field(default_factory=NoObserver)
    _walk_step: WalkStep = field(init=False, repr=False, compare=False)
    _publisher: Publisher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        walk = WalkStep(self.pleo, self.checkpoints, self.archive, self.observer, self.settings)
        publisher = Publisher(
            self.checkpoints, self.queue, self.ledger, self.archive, self.observer, self.settings
        )
        object.__setattr__(self, "_walk_step", walk)  # frozen: set once, here
        object.__setattr__(self, "_publisher", publisher)

    def with_ports(self, **ports: Any) -> ScopeJobService:
        """This service with some ports (or `settings`, `clock`, `observer`) replaced."""
        return replace(self, **ports)

    def run(
        self,
        job: JobRef,
        budget: Budget,
        owner: str,
        ticket: LoopTicket | None = None,
        walk_slice: WalkSlice | None = None,
    ) -> tuple[StepResult, InvocationStats]:
        """`ticket` is None for a trigger (EventBridge, direct), set for a loop invocation;
        `walk_slice`: the share of an admission invocation (`budget` is its whole time)."""
        stats = InvocationStats()
        started = self.clock.monotonic()
        retries, throttles = self.pleo.stats.retries, self.pleo.stats.throttles
        try:
            result = self._run(job, budget, owner, ticket, stats, walk_slice)
        except FINAL_ERRORS as error:
            self._keep_final_error(job, owner, error, stats)
            raise
        finally:
            stats.pleo_retries = self.pleo.stats.retries - retries
            stats.pleo_throttles = self.pleo.stats.throttles - throttles
            stats.seconds = self.clock.monotonic() - started
        return result, stats

    def _run(
        self,
        job: JobRef,
        budget: Budget,
        owner: str,
        ticket: LoopTicket | None,
        stats: InvocationStats,
        walk_slice: WalkSlice | None,
    ) -> StepResult:
        ownership = Ownership(self.checkpoints, self.hand_over)
        take_over_from = None
        if ticket is None:
            current = ownership.find_owner(job)
            require_walked_as(current.record, job)  # before any request with job's credential
            if current.record is not None and current.running_execution is not None:
                return adopted(current.record, current.running_execution)
            take_over_from = current.dead_hand_over
        deferred = self._check_job(job, budget, stats)
        if walk_slice is not None:  # the job's size can hand it over before its first page
            walk_slice = replace(walk_slice, job_items=stats.job_items)
        lease = min(budget.remaining() + self.settings.safety_margin_seconds, MAX_LEASE_SECONDS)
        state = self.checkpoints.begin(job, owner, lease, ticket, take_over_from=take_over_from)
        released = False
        try:
            if ticket is not None:
                state = ownership.check_ticket(state, ticket)
            result: StepResult
            if deferred is not None:
                # Pleo throttles even the job check: wait in Step Functions, not here.
                result = self._continuation(state, deferred.wait_seconds)
            else:
                result = self._continue(state, budget, stats, walk_slice)
            # Published here (not before): the write that said so released the lease too.
            released = isinstance(result, Done) and state.phase != "published"
            if isinstance(result, Continuing) and ticket is None:
                # Outside Step Functions: hand the rest of the walk to the state machine.
                result = ownership.hand_over_walk(state, result)
        finally:
            if not released:
                self.checkpoints.release(state)
        return result

    def _keep_final_error(
        self, job: JobRef, owner: str, error: Exception, stats: InvocationStats
    ) -> None:
        """On the walk record, so that operators see a failed job, not a stuck one, whoever
        triggered it (Step Functions' Fail state carries it too, for the loop's)."""
        job_status = stats.job_status
        if isinstance(error, JobNotFound):
            job_status = "not found"
        final = FinalError(
            name=type(error).__name__,
            cause=str(error)[:MAX_CAUSE_CHARS],
            job_status=job_status,
            at=iso_utc(self.clock.now()),
        )
        try:
            self.checkpoints.record_final_error(job, owner, final)
        except Exception:  # the error itself is what the caller must see
            logger.warning("could not keep the final error on the walk record", exc_info=True)

    def _check_job(
        self, job: JobRef, budget: Budget, stats: InvocationStats, *, step: str = "job_checked"
    ) -> RetryDeferred | None:
        """The job must exist and be claimed; a wait Pleo asks for is returned, not slept."""
        try:
            found = self.pleo.get_job(job, budget)
        except RetryDeferred as deferred:
            return deferred
        stats.job_status, stats.job_items = found.status, found.number_of_items
        if found.status != CLAIMED:
            raise JobNotClaimed(job.job_id, found.status)
        self.observer.on_step(step, job.job_id, 0)
        return None

    def _continue(
        self,
        state: WalkState,
        whole: Budget,
        stats: InvocationStats,
        walk_slice: WalkSlice | None,
    ) -> StepResult:
        stats.walk_started_at = state.started_at
        scope: Scope | None = None
        budget = walk_slice.budget if walk_slice else whole
        if state.phase == "walking":
            try:
                state, outcome, builder = self._walk_step.walk(state, whole, stats, walk_slice)
            except ArchivedPageMissing as missing:  # a page walked before, read back first
                logger.warning("walking the job again", extra={"reason": str(missing)})
                return self._continuation(self.checkpoints.restart(state), 0.0)
            if not outcome.done:
                return self._continuation(state, outcome.wait_seconds)
            if builder is not None:
                scope = builder.build()
                budget = whole  # walked whole here: a slice's pages, finished here too
        if state.phase == "walked":
            deferred = self._recheck_job(state, budget, stats)
            if deferred is not None:
                return self._continuation(state, deferred.wait_seconds)
            if scope is None:
                # Only an invocation that spent time walking may leave it to a fresh one.
                may_defer = stats.pages_fetched > 0
                try:
                    scope = self._walk_step.rebuild(state, budget, may_defer=may_defer)
                except ArchivedPageMissing as missing:
                    logger.warning("walking the job again", extra={"reason": str(missing)})
                    return self._continuation(self.checkpoints.restart(state), 0.0)
                if scope is None:
                    return self._continuation(state, 0.0)
            try:
                state = self._write_scope(state, scope)
            except ScopeConflict as conflict:
                logger.warning("walking the job again", extra={"reason": str(conflict)})
                return self._continuation(self.checkpoints.restart(state), 0.0)
        if state.phase == "scoped":
            deferred = self._recheck_job(state, budget, stats)
            if deferred is not None:
                return self._continuation(state, deferred.wait_seconds)
            jsonl = (
                scope.jsonl
                if scope is not None
                else self.archive.get_scope(state.job_id, state.run_id)
            )
            # The publish writes the job's pointer last, once all the run's units are out.
            state, finished = self._publisher.publish(state, jsonl, budget, stats)
            if not finished:
                return self._continuation(state, 0.0)
            state = self.checkpoints.finish(state)
        return self._done(state)

    def _recheck_job(
        self, state: WalkState, budget: Budget, stats: InvocationStats
    ) -> RetryDeferred | None:
        """Pleo may have failed, cancelled or expired the job while it was walked: checked once
        more when the walk is complete, before the scope files and the units are published,
        so that such a job gets nothing published (`JobNotClaimed`). Once per invocation,
        and only by one that walked: one that did not checked the job as it started."""
        if stats.job_rechecked or stats.pages_fetched == 0:
            # Walked nothing: this invocation's own check, moments ago, is the last one.
            return None
        deferred = self._check_job(state.job, budget, stats, step="job_rechecked")
        stats.job_rechecked = deferred is None
        return deferred

    def _write_scope(self, state: WalkState, scope: Scope) -> WalkState:
        location = self.archive.location(state.job_id, state.run_id)
        manifest = build_manifest(
            state.job_id,
            scope,
            company_id=state.company_id,
            run_id=state.run_id,
            scope_key=location.key,
            pages_fetched=state.pages_fetched,
            started_at=datetime.fromisoformat(state.started_at),
            completed_at=self.clock.now(),
        )
        self.checkpoints.confirm(state)  # S3 cannot be conditional on the lease
        self.archive.put_scope(
            state.job_id, state.run_id, scope.jsonl, manifest_bytes(manifest), scope.sha256
        )
        self.observer.on_step("scope_written", state.job_id, scope.item_count)
        return self.checkpoints.update(
            state,
            phase="scoped",
            items_in_scope=scope.item_count,
            scope_sha256=scope.sha256,
            items_published=0,
            units_published=0,
            unit_size=None,
            unit_count=None,
        )

    # -- results ------------------------------------------------------------------------

    def _continuation(self, state: WalkState, wait_seconds: float) -> Continuing:
        return Continuing(
            Continuation(state.job, state.run_id, state.hand_overs),
            state.phase,
            state.pages_fetched,
            state.items_published,
            wait_for_step_functions(wait_seconds),
        )

    def _done(self, state: WalkState) -> Done:
        assert state.items_in_scope is not None  # set with the scope, before the publish
        return Done(
            state.job,
            state.run_id,
            state.items_in_scope,
            state.pages_fetched,
            self.archive.location(state.job_id, state.run_id),
        )
