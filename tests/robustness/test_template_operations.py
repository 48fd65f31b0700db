"""template.yaml, operating part: every alarm says what happened and what to do, and notifies
the SNS topic when one is given (none otherwise); the issue's alarms and the dashboard's
widgets exist and read the metrics they claim to. Read from the template itself."""

from __future__ import annotations

import re

import pytest

from pleo_scope.aws.metrics import PRODUCT_NAMESPACE, PRODUCT_SERVICE, RELINK_METRIC
from tooling.testkit.monitoring import (
    ALARMS,
    NAMESPACE,
    TEMPLATE,
    dashboard,
    dashboard_metrics,
    dimension_of,
    product_metric_dimensions,
    resolve_conditions,
    substituted,
    watched,
)

CLI = "pleo-scope-ops"  # the operator CLI the descriptions point at


def test_the_topic_is_an_optional_parameter_behind_a_condition() -> None:
    parameter = TEMPLATE.document["Parameters"]["AlarmTopicArn"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:sns:eu-west-1:123456789012:ops")
    assert not re.fullmatch(parameter["AllowedPattern"], "ops@example.com")
    assert TEMPLATE.document["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_says_what_happened_and_what_to_do(alarm: str) -> None:
    description = substituted(TEMPLATE.properties(alarm)["AlarmDescription"])
    happened, _, to_do = description.partition("What to do:")
    assert len(happened) > 80, alarm
    assert len(to_do) > 60, alarm
    assert CLI in to_do or "redrive" in to_do, alarm
    assert len(description) <= 1024, f"{alarm}: CloudWatch keeps 1024 characters"


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_notifies_the_topic_when_one_is_given(alarm: str) -> None:
    properties = TEMPLATE.properties(alarm)
    with_topic = resolve_conditions(properties, {"HasAlarmTopic": True})
    assert with_topic["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], alarm
    assert with_topic["OKActions"] == [{"Ref": "AlarmTopicArn"}], alarm
    without = resolve_conditions(properties, {"HasAlarmTopic": False})
    assert "AlarmActions" not in without, alarm
    assert "OKActions" not in without, alarm
    assert properties.get("ActionsEnabled", True) is True
    assert properties["TreatMissingData"] == "notBreaching"  # no data: nothing happened


def test_the_issue_s_alarms_exist() -> None:
    by_metric: dict[tuple[str, str], list[str]] = {}
    for alarm in ALARMS:
        for metric in watched(alarm):
            by_metric.setdefault(metric, []).append(alarm)
    queues = {
        dimension_of(a, "QueueName")["Fn::GetAtt"][0]
        for a in by_metric[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    }
    assert queues == {
        "TriggerFailureQueue",
        "ScopeDeadLetterQueue",
        "TriggerDeliveryDeadLetterQueue",
        "AdmissionDeadLetterQueue",
    }
    (backlog,) = by_metric[("AWS/SQS", "ApproximateAgeOfOldestMessage")]
    assert dimension_of(backlog, "QueueName") == {"Fn::GetAtt": ["AdmissionQueue", "QueueName"]}
    assert TEMPLATE.properties(backlog)["Threshold"] == {"Ref": "AdmissionQueueAgeSeconds"}
    for name in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        (alarm,) = by_metric[("AWS/States", name)]
        assert dimension_of(alarm, "StateMachineArn") == {"Ref": "ScopeJobStateMachine"}
    for name in ("Errors", "Throttles"):
        (alarm,) = by_metric[("AWS/Lambda", name)]
        assert dimension_of(alarm, "FunctionName") == {"Ref": "ScopeJobFunction"}
    (throttling,) = by_metric[(NAMESPACE, "PleoThrottles")]
    assert TEMPLATE.properties(throttling)["Threshold"] == {"Ref": "PleoThrottlesPerFiveMinutes"}
    (stuck,) = by_metric[(NAMESPACE, "WalkAge")]
    assert TEMPLATE.properties(stuck)["Threshold"] == {"Ref": "StuckWalkHours"}
    # WalkAge is in seconds; the parameter in hours.
    queries = TEMPLATE.properties(stuck)["Metrics"]
    expressions = [q["Expression"] for q in queries if q.get("ReturnData")]
    assert expressions == ["ageSeconds / 3600"]


def test_product_alarms_read_the_function_s_namespace_and_service() -> None:
    assert TEMPLATE.environment("ScopeJobFunction")["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    for alarm in ALARMS:
        if any(namespace == NAMESPACE for namespace, _ in watched(alarm)):
            assert dimension_of(alarm, "service") == product_metric_dimensions()["service"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    shown = set().union(*dashboard_metrics().values())
    for metric in (
        "PagesFetched",
        "ItemsSeen",
        "ItemsInScope",
        "UnitsPublished",
        "ItemsEnqueued",
        "PleoRetries",
        "PleoThrottles",
        "Failures",
        "WalkDuration",
        "WalkAge",
    ):
        assert metric in shown, metric
    (failures,) = [t for t, names in dashboard_metrics().items() if "Failures" in names]
    assert "error name" in failures


def test_the_dashboard_lists_every_alarm() -> None:
    (widget,) = [w for w in dashboard()["widgets"] if w["type"] == "alarm"]
    (logical_id,) = TEMPLATE.of_type("AWS::CloudWatch::Dashboard")
    body = TEMPLATE.properties(logical_id)["DashboardBody"]["Fn::Sub"]
    assert len(widget["properties"]["alarms"]) == len(ALARMS)
    for alarm in ALARMS:
        assert f"${{{alarm}.Arn}}" in body, alarm


def test_a_tenant_in_relink_needed_raises_an_alarm() -> None:
    """The refresher's report of a tenant set relink_needed (from any process: the function's
    or a consumer's), or a walk that ended with RelinkNeeded (the function's `Failures` by
    error name), raises it."""
    (alarm,) = [a for a in ALARMS if (NAMESPACE, RELINK_METRIC) in watched(a)]
    assert watched(alarm) == {(NAMESPACE, RELINK_METRIC), (NAMESPACE, "Failures")}
    properties = TEMPLATE.properties(alarm)
    queries = {q["Id"]: q for q in properties["Metrics"]}
    stats = {
        q["MetricStat"]["Metric"]["MetricName"]: q["MetricStat"]
        for q in queries.values()
        if "MetricStat" in q
    }
    dimensions = {
        name: {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
        for name, stat in stats.items()
    }
    # What EmfRelinkReports emits, whatever the emitting process's own Powertools settings.
    service = product_metric_dimensions()["service"]
    assert (NAMESPACE, service) == (PRODUCT_NAMESPACE, PRODUCT_SERVICE)
    assert dimensions == {
        RELINK_METRIC: {"service": PRODUCT_SERVICE},
        "Failures": {"service": PRODUCT_SERVICE, "error": "RelinkNeeded"},
    }
    assert {stat["Stat"] for stat in stats.values()} == {"Sum"}
    (returned,) = [q for q in queries.values() if q.get("ReturnData")]
    ids = {q["Id"] for q in queries.values() if "MetricStat" in q}
    assert set(re.findall(r"FILL\((\w+), 0\)", returned["Expression"])) == ids  # either alone
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        0,
        "GreaterThanThreshold",
    )
    assert "tenant set-credential" in properties["AlarmDescription"]["Fn::Sub"]
