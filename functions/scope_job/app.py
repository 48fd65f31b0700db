"""ScopeJob: turn one claimed Pleo export job into its processing scope. Thin by design:
parse the event, run one step of the core (`pleo_scope`, in the layer) as `pleo_scope.wiring`
composes it, report it. Utilities are made once per container, at import; AWS clients on
first use. Tracing is Lambda's active tracing (template.yaml), no X-Ray SDK in the code."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from pleo_scope import wiring
from pleo_scope.admission import AdmissionSettings, admit
from pleo_scope.aws.admission_dlq import SqsDeadLetters
from pleo_scope.aws.metrics import StepMetrics
from pleo_scope.clock import Budget
from pleo_scope.events import ScopeRequest, parse_event
from pleo_scope.invocation import WalkSlice
from pleo_scope.service import ScopeJobService
from pleo_scope.settings import Settings
from pleo_scope.sqs_trigger import is_sqs_event, parse_sqs_event

SERVICE = "pleo-export-scope"
logger = Logger(service=SERVICE)
copy_config_to_registered_loggers(source_logger=logger, include={"pleo_scope"})
metrics = Metrics(namespace="PleoExportScope", service=SERVICE)
step_metrics = StepMetrics(metrics)

settings = Settings.from_env()
app = wiring.build(settings)
admission = AdmissionSettings.from_env()
dead_letters = SqsDeadLetters.at(admission.dead_letter_queue_url)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Read first: the remaining time is the function's time-out (Lambda exposes no variable).
    settings.require_time_to_work(context.get_remaining_time_in_millis() / 1e3)
    if is_sqs_event(event):  # the admission queue's event source: one time slice per trigger
        return admit(parse_sqs_event(event), partial(scope, context, True), dead_letters)
    return scope(context, False, parse_event(event))


def scope(context: LambdaContext, sliced: bool, request: ScopeRequest) -> dict[str, Any]:
    logger.set_correlation_id(request.job_id)
    logger.append_keys(jobId=request.job_id, companyId=request.job.company_id)
    service, remaining = app.service, context.get_remaining_time_in_millis() / 1e3
    budget = Budget.from_remaining(service.clock, remaining)
    walk_slice = None
    if sliced:  # a trigger from the admission queue walks for one time slice
        walk_slice = admission.walk_slice(service.clock, remaining, settings.safety_margin_seconds)
    step = partial(scope_step, service, request, budget, context.aws_request_id, walk_slice)
    with step_metrics.failures_counted(), app.releasing_rate_slots():
        if request.from_step_functions:
            return step()
        # A trigger: within the idempotency window a repeat gets the stored finished result.
        return app.triggers.run(request.job, step, context)


def scope_step(
    service: ScopeJobService,
    request: ScopeRequest,
    budget: Budget,
    owner: str,
    walk_slice: WalkSlice | None,
) -> dict[str, Any]:
    step, stats = service.run(request.job, budget, owner, request.ticket, walk_slice)
    result = step.payload()
    step_metrics.record(step, stats, service.clock.now())
    logger.info("scope step finished", extra={"result": result})
    return result
