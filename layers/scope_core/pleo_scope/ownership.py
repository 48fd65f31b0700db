"""One owner per run (DESIGN.md, "Hand-over and ownership").

A trigger that finds the walk owned by a running execution adopts it; one that finds the
owning execution closed takes the lease over (its holder is dead) and, if it cannot finish,
hands over to a new execution under a new hand-over number. A loop invocation works only
for the hand-over that started its execution.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pleo_scope.contract import (
    Continuation,
    Continuing,
    HandedOver,
    JobRef,
    LoopInput,
    LoopTicket,
)
from pleo_scope.errors import HandOverFailed, WalkSuperseded
from pleo_scope.ports import CheckpointStore, HandOver, WalkState

START_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Owner:
    """What a trigger learnt of the walk before touching it."""

    record: WalkState | None
    running_execution: str | None

    @property
    def dead_hand_over(self) -> int | None:
        """The hand-over holding the lease, when its execution is no longer running."""
        if self.record is None or self.running_execution is not None:
            return None
        return self.record.lease_hand_over


@dataclass
class Ownership:
    checkpoints: CheckpointStore
    hand_over: HandOver

    def find_owner(self, job: JobRef) -> Owner:
        record = self.checkpoints.peek(job)
        if record is None or record.phase == "published" or record.execution_arn is None:
            return Owner(record, None)
        return Owner(record, self.hand_over.running_execution(record.execution_arn))

    def check_ticket(self, state: WalkState, ticket: LoopTicket) -> WalkState:
        """A loop invocation of an older hand-over stops; otherwise its hand-over and its
        execution (a new generation after continue-as-new) become the ones of record."""
        if ticket.hand_over < state.hand_overs:
            raise WalkSuperseded(
                f"export job {state.job_id}: hand-over {state.hand_overs} owns the walk,"
                f" not hand-over {ticket.hand_over}"
            )
        changes: dict[str, Any] = {}
        if ticket.hand_over > state.hand_overs:  # started by hand (`sam local invoke`)
            changes["hand_overs"] = ticket.hand_over
        if ticket.execution_arn and ticket.execution_arn != state.execution_arn:
            changes["execution_arn"] = ticket.execution_arn
        return self.checkpoints.update(state, **changes) if changes else state

    def hand_over_walk(self, state: WalkState, result: Continuing) -> Continuing:
        """Start a new execution for the rest of the walk (under the lease); returns the
        result naming it. The record names it before it starts, so that no trigger can
        miss it."""
        number = state.hand_overs
        for _ in range(START_ATTEMPTS):
            number += 1
            continuation = replace(result.continuation, hand_over=number)
            loop = LoopInput(continuation, result.wait_seconds)
            arn = self.hand_over.execution_arn(loop.execution_name)
            state = self.checkpoints.update(state, hand_overs=number, execution_arn=arn)
            if self.hand_over.start(loop):
                return result.handing_over(number, arn)
        raise HandOverFailed(f"{state.job}: {START_ATTEMPTS} execution names in a row were taken")


def adopted(record: WalkState, execution_arn: str) -> Continuing:
    """A trigger's answer when a running execution owns the walk: nothing was touched."""
    return Continuing(
        Continuation(record.job, record.run_id, record.hand_overs),
        record.phase,
        record.pages_fetched,
        record.items_published,
        handed_over=HandedOver(execution_arn, adopted=True),
    )
