"""Admission: the triggers of one admission-queue batch, each run in a time slice.

Backpressure is the queue's: the event source's maximum concurrency bounds how many
invocations take triggers at once, and a trigger beyond that waits in the queue (never
throttled, never dropped). Capacity is shared by time slicing: an invocation walks its
trigger's job for at most `slice_seconds` (but at least `SLICE_MIN_PAGES` pages), then hands
the rest of the walk to the Step Functions loop (the way a walk longer than one invocation
always continued); as soon as the pages' `total` says the walk will not fit in the slice, it
hands over at once instead of spending the slice. A large walk holds an admission slot for
one slice at most, not fifteen minutes, so the small companies' jobs queued behind it start
within a slice; it goes on in the loop at its company's rate budget. A job walked whole
within its slice is a small one: its scope and publish follow in the same invocation, on its
own time, never handed over.

Per record, the outcome the event source acts on:
- finished, handed over, or adopted by a running execution: the message is done (deleted);
- a body that is not a trigger (`InvalidEvent`), or a final error (the job, the tenant or
  the setup is wrong: retrying cannot help): the message goes to the admission dead-letter
  queue at once, with the error's name and reason, and is done; a retry loop would change
  nothing;
- anything else (Pleo or AWS failing for now): a batch item failure; the message comes back
  after the queue's visibility timeout, and after the redrive policy's receives it is poison
  and the queue moves it to the same dead-letter queue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pleo_scope.clock import Budget, Clock
from pleo_scope.errors import FINAL_ERRORS, ConfigurationError
from pleo_scope.events import ScopeRequest
from pleo_scope.invocation import WalkSlice
from pleo_scope.sqs_trigger import QueuedTrigger

logger = logging.getLogger(__name__)

DEFAULT_SLICE_SECONDS = 3.0
SLICE_MIN_PAGES = 10
"""A walk of this many pages or fewer is never handed over for time: it finishes in its
admission invocation however slow its pages (a hand-over, the loop's start and its job
check would cost more than they free)."""
MAX_REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    slice_seconds: float = DEFAULT_SLICE_SECONDS
    """How long an invocation from the queue walks before it hands over to the loop."""
    dead_letter_queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AdmissionSettings:
        raw = env.get("ADMISSION_SLICE_SECONDS", "").strip()
        try:
            slice_seconds = float(raw) if raw else DEFAULT_SLICE_SECONDS
        except ValueError:
            raise ConfigurationError(f"ADMISSION_SLICE_SECONDS={raw!r} is not a number") from None
        if not 0 < slice_seconds < float("inf"):
            raise ConfigurationError(f"ADMISSION_SLICE_SECONDS={raw!r} must be positive")
        url = env.get("ADMISSION_DEAD_LETTER_QUEUE_URL", "").strip() or None
        return cls(slice_seconds, url)

    def slice_budget(self, clock: Clock, remaining_seconds: float, margin: float) -> Budget:
        """The invocation's budget cut to one slice of walking plus the safety margin that
        the walk keeps free at its end (to checkpoint and hand over)."""
        return Budget.from_remaining(clock, min(remaining_seconds, self.slice_seconds + margin))

    def walk_slice(self, clock: Clock, remaining_seconds: float, margin: float) -> WalkSlice:
        return WalkSlice(self.slice_budget(clock, remaining_seconds, margin), SLICE_MIN_PAGES)


class DeadLetters(Protocol):
    def keep(self, trigger: QueuedTrigger, error_name: str, reason: str) -> None:
        """Put the trigger's body on the admission dead-letter queue, with why."""
        ...


def admit(
    triggers: list[QueuedTrigger],
    run: Callable[[ScopeRequest], Any],
    dead_letters: DeadLetters | None,
) -> dict[str, list[dict[str, str]]]:
    """Run each trigger; the answer is the event source's partial batch response."""
    failures: list[dict[str, str]] = []
    for trigger in triggers:
        try:
            _admit_one(trigger, run, dead_letters)
        except Exception:
            logger.warning(
                "admission: trigger failed, the queue delivers it again",
                extra={"messageId": trigger.message_id, "receiveCount": trigger.receive_count},
                exc_info=True,
            )
            failures.append({"itemIdentifier": trigger.message_id})
    return {"batchItemFailures": failures}


def _admit_one(
    trigger: QueuedTrigger, run: Callable[[ScopeRequest], Any], dead_letters: DeadLetters | None
) -> None:
    if trigger.request is None:
        error: Exception = trigger.error or ValueError("no trigger")
    else:
        try:
            run(trigger.request)
            return
        except FINAL_ERRORS as final:
            error = final
    if dead_letters is None:
        # Without the queue's URL (a local run) the redrive policy is the way there.
        raise error
    dead_letters.keep(trigger, type(error).__name__, str(error)[:MAX_REASON_CHARS])
    logger.warning(
        "admission: trigger set aside in the dead-letter queue",
        extra={"messageId": trigger.message_id, "error": type(error).__name__},
    )
