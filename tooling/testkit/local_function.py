"""The ScopeJob function on the local stack, as Lambda serves it: moto's Lambda API runs the
handler in this process (synchronously, or in the background for InvocationType Event), the
state machine's tasks reach it through the same API, and the template's EventBridge rule on
the bus delivers "Export Job Claimed" to it (moto's EventBridge has no Lambda target). Each
invocation is logged on one line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from moto.events.models import Rule

from tooling.build.template import Template
from tooling.testkit.local_stack import (
    FUNCTION,
    Handler,
    Invocation,
    LocalStack,
    route_lambda,
)

RULE = "ExportJobClaimed"  # template.yaml: ScopeJobFunction's EventBridgeRule event


def log_line(invocation: Invocation) -> str:
    """`10:02:03  sync   trigger  8eb648ab-...  done: 1,667 in scope, 25 pages  (0.8 s)`"""
    event = invocation.event
    detail = event.get("detail")
    job_id = event.get("jobId") or (detail.get("jobId") if isinstance(detail, dict) else None)
    how = "async" if invocation.kind == "Event" else "sync"
    source = "loop" if "continuation" in event else "trigger"
    result = invocation.result
    if invocation.error is not None:
        outcome = f"error {invocation.error}"
    elif result is None or not isinstance(result, dict):
        outcome = f"answered {result!r}"
    elif result.get("done"):
        outcome = (
            f"done: {result.get('itemsInScope', 0):,} in scope,"
            f" {result.get('pagesFetched', 0):,} pages"
        )
    else:
        handed = result.get("handedOver") or {}
        outcome = (
            f"continuation: {result.get('phase')}, {result.get('pagesFetched', 0):,} pages"
            + (" (a running execution adopted)" if handed.get("adopted") else "")
            + (" (handed over to Step Functions)" if handed and not handed.get("adopted") else "")
        )
    clock = datetime.now(UTC).strftime("%H:%M:%S")
    return f"{clock}  {how:<5}  {source:<7}  {job_id}  {outcome}  ({invocation.seconds:.1f} s)"


@contextmanager
def serve_function(
    local: LocalStack, handler: Handler, timeout_seconds: float, log: TextIO = sys.stdout
) -> Iterator[list[dict[str, Any]]]:
    """Serve `handler` as the stack's function until the block ends; yields the invocation
    record. The template's trigger rule is created on its bus, targeting the function."""

    def logged(invocation: Invocation) -> None:
        print(log_line(invocation), file=log, flush=True)

    with (
        route_lambda(
            handler, timeout_seconds, events_in_background=True, on_invocation=logged
        ) as invocations,
        _rule_delivers_to_lambda(local),
    ):
        _create_trigger_rule(local)
        yield invocations


def _create_trigger_rule(local: LocalStack) -> None:
    template = Template.load()
    rule = template.properties(FUNCTION)["Events"][RULE]["Properties"]
    parameters = template.document["Parameters"]
    bus = str(parameters["EventBusName"]["Default"])
    pattern = {
        "source": [parameters["EventSource"]["Default"]],
        "detail-type": rule["Pattern"]["detail-type"],
    }
    events = local.client("events")
    name = f"{local.stack}-{RULE}"
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=name,
        EventBusName=bus,
        Targets=[{"Id": FUNCTION, "Arn": local.physical[f"{FUNCTION}.Arn"]}],
    )


def delivered_event(message: dict[str, Any]) -> dict[str, Any]:
    """moto's event message as EventBridge hands it to a Lambda target (time in ISO 8601)."""
    event = {k: v for k, v in message.items() if k != "ingestion-time"}
    when = event.get("time")
    if isinstance(when, int | float):
        event["time"] = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


@contextmanager
def _rule_delivers_to_lambda(local: LocalStack) -> Iterator[None]:
    """A rule's Lambda targets get the event as an asynchronous invocation (through moto's
    Lambda API, so that it is routed and logged like any other); other targets as before."""
    original: Callable[..., None] = Rule.send_to_targets
    lambda_client = local.client("lambda")

    def send_to_targets(self: Rule, message: Any, transform_input: bool = True) -> None:
        functions = [t for t in self.targets if str(t["Arn"]).startswith("arn:aws:lambda:")]
        if functions and self.event_pattern.matches_event(message):
            for target in functions:
                lambda_client.invoke(
                    FunctionName=target["Arn"],
                    InvocationType="Event",
                    Payload=json.dumps(delivered_event(message)).encode(),
                )
        others = [t for t in self.targets if t not in functions]
        if others:
            kept = self.targets
            self.targets = others
            try:
                original(self, message, transform_input)
            finally:
                self.targets = kept

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]


def wait_forever() -> None:
    while True:
        time.sleep(3600)
