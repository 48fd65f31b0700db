"""The loop through Step Functions on the local stack, with "invocations" of a few seconds:
jobs slow enough to be handed over, and moto's Lambda tasks routed to the handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tooling.pleo_sim import Fault, SimJob
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import route_lambda

# Long enough for a page or two and the hand-over, short enough that a job of a few hundred
# items needs several invocations.
INVOCATION_SECONDS = 2.5


def slow_job(stack: Stack, items: int = 300) -> SimJob:
    """30 pages of 150 ms each: a handful of pages per 2.5-second invocation (the walk
    persists pages behind its requests, so only Pleo's latency paces it)."""
    job = stack.new_job(items=items)
    stack.simulator.inject(job.id, Fault("latency", seconds=0.15))
    return job


@contextmanager
def routed(
    stack: Stack, wrap: Callable[[Any], Any] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """moto's Lambda runs the handler (wrapped by `wrap`), each invocation given
    INVOCATION_SECONDS; yields the invocations as they happen."""
    handler = wrap(stack.app.lambda_handler) if wrap else stack.app.lambda_handler
    with route_lambda(handler, INVOCATION_SECONDS) as invocations:
        yield invocations
