"""Fencing (issue 19, contract v3): every write a walk makes is conditional on the lease its
writer holds. Two invocations of one hand-over (a retried task whose first attempt still
runs) never both write, and an invocation whose lease was taken over writes nothing more."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pleo_scope.errors import WalkInProgress
from pleo_scope.ports import OutgoingMessage, ScopeQueue
from tooling.pleo_sim import SimJob
from tooling.testkit.harness import Stack

PAUSE_STEP = "units_planned"  # the walk is done, the scope written, no unit sent yet


class PauseFirst:
    """Holds the first invocation that reaches `step` there until released."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.paused = threading.Event()
        self.release = threading.Event()
        self._taken = threading.Lock()
        self.holder: str | None = None

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step != self.step or not self._taken.acquire(blocking=False):
            return
        self.holder = threading.current_thread().name
        self.paused.set()
        assert self.release.wait(60), "never released"


@dataclass
class SendsByThread:
    """The queue port, counting SendMessageBatch calls by the invocation (thread) sending."""

    inner: ScopeQueue
    calls: Counter[str] = field(default_factory=Counter)

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        self.calls[threading.current_thread().name] += 1
        return self.inner.send_batch(messages)


@pytest.fixture
def sends(stack: Stack) -> Iterator[SendsByThread]:
    counting = SendsByThread(stack.app.app.service.queue)
    with stack.app.app.injected(queue=counting):
        yield counting


def first_attempt(stack: Stack, event: dict[str, Any], pause: PauseFirst) -> dict[str, Any]:
    """Start `event` in a thread of its own and wait until it holds at `pause`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = stack.invoke(event)
        except Exception as error:  # what the first attempt ends with, for the test to see
            outcome["error"] = error

    thread = threading.Thread(target=run, name="first-attempt")
    thread.start()
    assert pause.paused.wait(60), outcome
    outcome["thread"] = thread
    return outcome


def finish(outcome: dict[str, Any], pause: PauseFirst) -> None:
    pause.release.set()
    outcome["thread"].join(60)


def units_of(stack: Stack, job: SimJob) -> list[dict[str, Any]]:
    return [m for m in stack.drain_queue() if m["jobId"] == job.id]


def test_two_invocations_of_one_hand_over_never_both_publish(
    stack: Stack, sends: SendsByThread
) -> None:
    """Step Functions retried the task while its first attempt still runs: the retry finds
    the lease held by a live invocation of its own hand-over and writes nothing."""
    job = stack.new_job(items=45)
    loop_state = {"jobId": job.id, "continuation": {"runId": 1, "handOver": 1}}
    pause = PauseFirst(PAUSE_STEP)
    with stack.app.app.injected(observer=pause):
        first = first_attempt(stack, loop_state, pause)
        try:
            with pytest.raises(WalkInProgress, match="held by another invocation"):
                stack.invoke(loop_state)  # the retry, same hand-over, same loop state
            assert sends.calls == Counter()  # it sent nothing
        finally:
            finish(first, pause)
    assert "error" not in first, first.get("error")
    assert first["result"]["done"] is True
    assert sends.calls.keys() == {"first-attempt"}  # exactly one of the two published
    items = [item for unit in units_of(stack, job) for item in unit["items"]]
    assert (
        len(items)
        == len({i["accountingEntryId"] for i in items})
        == first["result"]["itemsInScope"]
    )
    assert stack.scope_of(job.id) == stack.expected_scope(job)


def test_an_invocation_whose_lease_was_taken_over_sends_nothing_more(
    stack: Stack, sends: SendsByThread
) -> None:
    """The loop's invocation is slow while its execution is stopped; a re-sent trigger takes
    the walk over and publishes. The old invocation, resuming, finds it no longer holds the
    lease before its first send, and sends nothing."""
    job = stack.new_job(items=45)
    closed = "arn:aws:states:eu-west-1:123456789012:execution:gone:scope-closed"
    loop_state = {
        "jobId": job.id,
        "continuation": {"runId": 1, "handOver": 1},
        "execution": closed,  # no such execution runs: the trigger takes its lease over
    }
    pause = PauseFirst(PAUSE_STEP)
    with stack.app.app.injected(observer=pause):
        first = first_attempt(stack, loop_state, pause)
        try:
            taken_over = stack.invoke({"jobId": job.id})
            assert taken_over["done"] is True
        finally:
            finish(first, pause)
    assert isinstance(first.get("error"), WalkInProgress), first
    assert "no longer holds the walk's lease" in str(first["error"])
    assert sends.calls.keys() == {"MainThread"}  # only the trigger sent
    items = [item for unit in units_of(stack, job) for item in unit["items"]]
    assert len(items) == len({i["accountingEntryId"] for i in items}) == taken_over["itemsInScope"]
