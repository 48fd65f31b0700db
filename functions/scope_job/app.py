"""ScopeJob: turn one claimed Pleo export job into its processing scope.

Thin by design: parse the event, then call the core (`pleo_scope`, in the layer). Utilities
are built once per container, at import; AWS clients on their first use (nothing at import
talks to the network). Tracing is Lambda's active tracing (template.yaml), without an X-Ray
SDK in the code (README, "Tracing").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_scope import wiring
from pleo_scope.admission import AdmissionSettings, admit
from pleo_scope.aws.admission_dlq import SqsDeadLetters
from pleo_scope.aws.idempotency import DeferredDynamoDBPersistenceLayer
from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef, LoopTicket
from pleo_scope.events import ScopeRequest, parse_event
from pleo_scope.service import InvocationStats
from pleo_scope.settings import Settings
from pleo_scope.sqs_trigger import is_sqs_event, parse_sqs_event

SERVICE = "pleo-export-scope"
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"pleo_scope"})
metrics = Metrics(namespace="PleoExportScope", service=SERVICE)
# Failures again, by error name: an isolated set, so that `error` dimensions nothing else.
failures_by_error = EphemeralMetrics(namespace="PleoExportScope", service=SERVICE)

settings = Settings.from_env()
app = wiring.build(settings)
idempotency = IdempotencyConfig(
    event_key_jmespath="jobId",
    expires_after_seconds=settings.idempotency_ttl_seconds,
    raise_on_no_idempotency_key=True,
)
persistence = DeferredDynamoDBPersistenceLayer(settings.idempotency_table, lambda: app.dynamodb)
admission = AdmissionSettings.from_env()
dead_letters = SqsDeadLetters.at(admission.dead_letter_queue_url)


class _Unfinished(Exception):
    """Carries a `done: false` result past the idempotency layer: an exception makes it drop
    its record, so a repeated trigger asks again who owns the walk, instead of replaying an
    answer that may name an execution which has ended since."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("walk continues")
        self.result = result


def _scope_claimed_job(trigger: dict[str, str], budget: Budget, owner: str) -> dict[str, Any]:
    """A trigger from outside Step Functions: within the idempotency window, a repeat of it
    returns this stored (finished) result without calling Pleo."""
    result = run(JobRef(trigger["jobId"]), budget, owner, None)
    if not result["done"]:
        raise _Unfinished(result)
    return result


# Applied by assignment: the decorator is untyped, and the annotation keeps the signature.
scope_claimed_job: Callable[..., dict[str, Any]] = idempotent_function(
    data_keyword_argument="trigger", config=idempotency, persistence_store=persistence
)(_scope_claimed_job)


def run(job: JobRef, budget: Budget, owner: str, ticket: LoopTicket | None) -> dict[str, Any]:
    step, stats = app.service.run(job, budget, owner, ticket)
    result = step.payload()
    record_metrics(result, stats)
    logger.info("scope step finished", extra={"result": result})
    return result


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Read first: the remaining time is the function's time-out (Lambda exposes no variable).
    settings.require_time_to_work(context.get_remaining_time_in_millis() / 1e3)
    if is_sqs_event(event):  # the admission queue's event source: one time slice per trigger
        triggers = parse_sqs_event(event)
        return admit(triggers, lambda request: handle(request, context, sliced=True), dead_letters)
    return handle(parse_event(event), context)


def handle(
    request: ScopeRequest, context: LambdaContext, *, sliced: bool = False
) -> dict[str, Any]:
    logger.set_correlation_id(request.job_id)
    logger.append_keys(jobId=request.job_id)
    idempotency.register_lambda_context(context)
    remaining = context.get_remaining_time_in_millis() / 1e3
    if sliced:
        margin = settings.safety_margin_seconds
        budget = admission.slice_budget(app.service.clock, remaining, margin)
    else:
        budget = Budget.from_remaining(app.service.clock, remaining)
    owner = context.aws_request_id
    try:
        if request.ticket is not None:
            return run(request.job, budget, owner, request.ticket)
        result: dict[str, Any] = scope_claimed_job(
            trigger={"jobId": request.job_id}, budget=budget, owner=owner
        )
        return result
    except _Unfinished as unfinished:
        return unfinished.result
    except Exception as error:
        metrics.add_metric("Failures", MetricUnit.Count, 1)
        metrics.add_metadata("error", type(error).__name__)
        count_failure_by_error(type(error).__name__)
        raise


def count_failure_by_error(error_name: str) -> None:
    failures_by_error.add_dimension("error", error_name)
    failures_by_error.add_metric("Failures", MetricUnit.Count, 1)
    try:
        failures_by_error.flush_metrics()
    finally:
        failures_by_error.clear_metrics()  # flushing skips that when metrics are disabled


def record_metrics(result: dict[str, Any], stats: InvocationStats) -> None:
    metrics.add_metric("PagesFetched", MetricUnit.Count, stats.pages_fetched)
    metrics.add_metric("ItemsSeen", MetricUnit.Count, stats.items_seen)
    metrics.add_metric("ItemsEnqueued", MetricUnit.Count, stats.items_enqueued)
    metrics.add_metric("UnitsPublished", MetricUnit.Count, stats.units_enqueued)
    metrics.add_metric("PleoRetries", MetricUnit.Count, stats.pleo_retries)
    metrics.add_metric("PleoThrottles", MetricUnit.Count, stats.pleo_throttles)
    metrics.add_metric("Duration", MetricUnit.Milliseconds, stats.seconds * 1e3)
    # WalkAge on every invocation that ends unfinished: what the stuck-walk alarm watches.
    walk_seconds = _seconds_since(stats.walk_started_at)
    if result["done"]:
        metrics.add_metric("ItemsInScope", MetricUnit.Count, result["itemsInScope"])
        metrics.add_metric("JobsScoped", MetricUnit.Count, 1)
        if walk_seconds is not None:
            metrics.add_metric("WalkDuration", MetricUnit.Seconds, walk_seconds)
    else:
        metrics.add_metric("HandOvers", MetricUnit.Count, 1)
        if walk_seconds is not None:
            metrics.add_metric("WalkAge", MetricUnit.Seconds, walk_seconds)


def _seconds_since(started_at: str | None) -> float | None:
    if not started_at:
        return None
    return max(0.0, (app.service.clock.now() - datetime.fromisoformat(started_at)).total_seconds())
