"""The product's CloudWatch metrics (embedded metric format, through Powertools): what each of
the function's steps did, failures, also counted by error name, and the OAuth refresher's
report of a tenant set relink_needed (from any process). docs/operating.md names the alarms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from pleo_scope.contract import Done, StepResult
from pleo_scope.invocation import InvocationStats

PRODUCT_NAMESPACE = "PleoExportScope"
PRODUCT_SERVICE = "pleo-export-scope"
"""The namespace and `service` dimension the template's alarms read (the function's
POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME)."""
RELINK_METRIC = "TenantRelinkNeeded"


class EmfRelinkReports:
    """The OAuth refresher's `RelinkReports`: one EMF document on stdout per tenant it set
    relink_needed, in the product's namespace and service whatever the process's own
    Powertools settings (a consumer's may name its own service), so that the relink alarm
    reads it. Lambda turns stdout's EMF into the metric; elsewhere the CloudWatch agent
    does (docs/consumers.md). The company goes as a property, not a dimension: one metric
    for the alarm, the company for Logs Insights."""

    def __init__(self, namespace: str = PRODUCT_NAMESPACE, service: str = PRODUCT_SERVICE) -> None:
        self.namespace = namespace
        self.service = service

    def relink_needed(self, company_id: str) -> None:
        metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
        metrics.add_metric(RELINK_METRIC, MetricUnit.Count, 1)
        metrics.add_metadata("companyId", company_id)
        metrics.flush_metrics()  # now: the walk is about to fail, a consumer may exit


class StepMetrics:
    """Shapes the handler's `Metrics` (flushed by its `log_metrics`)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # Failures again, by error name: an isolated set, so that `error` dimensions nothing else.
        self._by_error = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)

    def record(self, result: StepResult, stats: InvocationStats, now: datetime) -> None:
        add = self.metrics.add_metric
        add("PagesFetched", MetricUnit.Count, stats.pages_fetched)
        add("ItemsSeen", MetricUnit.Count, stats.items_seen)
        add("ItemsEnqueued", MetricUnit.Count, stats.items_enqueued)
        add("UnitsPublished", MetricUnit.Count, stats.units_enqueued)
        add("PleoRetries", MetricUnit.Count, stats.pleo_retries)
        add("PleoThrottles", MetricUnit.Count, stats.pleo_throttles)
        add("Duration", MetricUnit.Milliseconds, stats.seconds * 1e3)
        # WalkAge on every invocation that ends unfinished: what the stuck-walk alarm watches.
        walk_seconds = _seconds_since(stats.walk_started_at, now)
        if isinstance(result, Done):
            add("ItemsInScope", MetricUnit.Count, result.items_in_scope)
            add("JobsScoped", MetricUnit.Count, 1)
            if walk_seconds is not None:
                add("WalkDuration", MetricUnit.Seconds, walk_seconds)
        else:
            add("HandOvers", MetricUnit.Count, 1)
            if walk_seconds is not None:
                add("WalkAge", MetricUnit.Seconds, walk_seconds)

    @contextmanager
    def failures_counted(self) -> Iterator[None]:
        """An exception raised inside is counted (and raised on)."""
        try:
            yield
        except Exception as error:
            name = type(error).__name__
            self.metrics.add_metric("Failures", MetricUnit.Count, 1)
            self.metrics.add_metadata("error", name)
            self._by_error.add_dimension("error", name)
            self._by_error.add_metric("Failures", MetricUnit.Count, 1)
            try:
                self._by_error.flush_metrics()
            finally:
                self._by_error.clear_metrics()  # flushing skips that when metrics are disabled
            raise


def _seconds_since(started_at: str | None, now: datetime) -> float | None:
    if not started_at:
        return None
    return max(0.0, (now - datetime.fromisoformat(started_at)).total_seconds())
