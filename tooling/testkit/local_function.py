"""The ScopeJob function on the local stack, as Lambda serves it: moto's Lambda API runs the
handler in this process (synchronously, or in the background for InvocationType Event), the
state machine's tasks reach it through the same API, and the template's EventBridge rule on
the bus puts "Export Job Claimed" on the admission queue, from which a poller standing in for
Lambda's SQS event source invokes it, at the template's maximum concurrency
(tooling/testkit/admission_poller.py). Each invocation is logged on one line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from moto.events.utils import EventTemplateParser

from tooling.build.template import Template
from tooling.testkit.admission_poller import poll_admission_queue
from tooling.testkit.local_stack import (
    Handler,
    Invocation,
    LocalStack,
    route_lambda,
)

RULE = "ExportJobClaimedRule"  # template.yaml: the rule that feeds the admission queue


def _queued_trigger(event: dict[str, Any]) -> dict[str, Any] | None:
    records = event.get("Records")
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    try:
        body = json.loads(records[0].get("body") or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def log_line(invocation: Invocation) -> str:
    """`10:02:03  sync   trigger  8eb648ab-...  done: 1,667 in scope, 25 pages  (0.8 s)`"""
    queued = _queued_trigger(invocation.event)
    event = invocation.event if queued is None else queued
    detail = event.get("detail")
    job_id = event.get("jobId") or (detail.get("jobId") if isinstance(detail, dict) else None)
    how = "async" if invocation.kind == "Event" else "sync"
    source = "loop" if "continuation" in event else "trigger" if queued is None else "queue"
    result = invocation.result
    if invocation.error is not None:
        outcome = f"error {invocation.error}"
    elif queued is not None and isinstance(result, dict):
        failed = len(result.get("batchItemFailures", []))
        outcome = "admitted" if not failed else "failed: the queue delivers it again"
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
    local: LocalStack,
    handler: Handler,
    timeout_seconds: float,
    log: TextIO = sys.stdout,
    *,
    admission_concurrency: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Serve `handler` as the stack's function until the block ends; yields the invocation
    record. The template's trigger rule is created on its bus, targeting the admission
    queue, and the queue is polled at `admission_concurrency` (the template's by default)."""

    def logged(invocation: Invocation) -> None:
        print(log_line(invocation), file=log, flush=True)

    with (
        route_lambda(
            handler, timeout_seconds, events_in_background=True, on_invocation=logged
        ) as invocations,
        events_name_their_account(),
    ):
        create_trigger_rule(local)
        with poll_admission_queue(local, admission_concurrency):
            yield invocations


def trigger_rule_pattern(template: Template | None = None) -> dict[str, Any]:
    """The rule's event pattern, its parameters resolved to their defaults."""
    template = template or Template.load()
    pattern = template.properties(RULE)["EventPattern"]
    parameters = template.document["Parameters"]
    return {
        name: [
            parameters[v["Ref"]]["Default"] if isinstance(v, dict) and "Ref" in v else v
            for v in values
        ]
        for name, values in pattern.items()
    }


def create_trigger_rule(local: LocalStack) -> None:
    """The template's rule on its bus, its target the admission queue."""
    template = Template.load()
    rule = template.properties(RULE)
    bus = str(template.document["Parameters"]["EventBusName"]["Default"])
    (target,) = rule["Targets"]
    queue = target["Arn"]["Fn::GetAtt"][0]
    events = local.client("events")
    name = f"{local.stack}-{RULE}"
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps(trigger_rule_pattern(template))
    )
    events.put_targets(
        Rule=name,
        EventBusName=bus,
        Targets=[{"Id": target["Id"], "Arn": local.physical[f"{queue}.Arn"]}],
    )


@contextmanager
def events_name_their_account() -> Iterator[None]:
    """moto's EventBridge leaves `account` out of the event it puts on an SQS target (its
    default input template lacks it); AWS puts the whole event there, `account` included."""
    original = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in original:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = original.replace(
            '"version": "0",', '"version": "0", "account": "<account>",', 1
        )
    try:
        yield
    finally:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = original


def wait_forever() -> None:
    while True:
        time.sleep(3600)
