"""template.yaml, operating part: every alarm says what happened and what to do, and notifies
the SNS topic when one is given (none otherwise); the issue's alarms and the dashboard's
widgets exist and read the metrics they claim to. Read from the template itself."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tooling.build.template import Template

TEMPLATE = Template.load()
ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
NAMESPACE = "PleoExportScope"
CLI = "pleo-scope-ops"  # the operator CLI the descriptions point at


def resolve_conditions(value: Any, conditions: dict[str, bool]) -> Any:
    """CloudFormation's Fn::If and AWS::NoValue, for a given truth of each condition."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return resolve_conditions(when_true if conditions[name] else when_false, conditions)
        resolved = {k: resolve_conditions(v, conditions) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(value, list):
        items = [resolve_conditions(v, conditions) for v in value]
        return [v for v in items if v != {"Ref": "AWS::NoValue"}]
    return value


def substituted(value: Any, placeholder: str = "x" * 80) -> str:
    """A string or Fn::Sub (either form) with every ${...} replaced (by something longer than
    any name)."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    if isinstance(text, list):  # [text, {variable: value}]
        text = text[0]
    assert isinstance(text, str)
    return re.sub(r"\$\{[^}]+\}", placeholder, text)


def watched(alarm: str) -> set[tuple[str, str]]:
    """(namespace, metric name) of every metric the alarm reads."""
    properties = TEMPLATE.properties(alarm)
    if "MetricName" in properties:
        return {(properties["Namespace"], properties["MetricName"])}
    return {
        (query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"])
        for query in properties["Metrics"]
        if "MetricStat" in query
    }


def dimension_of(alarm: str, name: str) -> Any:
    properties = TEMPLATE.properties(alarm)
    dimensions = properties.get("Dimensions") or next(
        q["MetricStat"]["Metric"]["Dimensions"] for q in properties["Metrics"] if "MetricStat" in q
    )
    return next(d["Value"] for d in dimensions if d["Name"] == name)


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


def product_metric_dimensions() -> dict[str, str]:
    """What the function's metrics are dimensioned by: its Powertools service name."""
    env = TEMPLATE.environment("ScopeJobFunction")
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    return {"service": env["POWERTOOLS_SERVICE_NAME"]}


def test_product_alarms_read_the_function_s_namespace_and_service() -> None:
    for alarm in ALARMS:
        if any(namespace == NAMESPACE for namespace, _ in watched(alarm)):
            assert dimension_of(alarm, "service") == product_metric_dimensions()["service"]


def dashboard() -> dict[str, Any]:
    (logical_id,) = TEMPLATE.of_type("AWS::CloudWatch::Dashboard")
    body: dict[str, Any] = json.loads(
        substituted(TEMPLATE.properties(logical_id)["DashboardBody"], "1")
    )
    return body


def dashboard_metrics() -> dict[str, set[str]]:
    """Widget title -> the product's metric names it shows (SEARCH expressions included)."""
    shown: dict[str, set[str]] = {}
    for widget in dashboard()["widgets"]:
        if widget["type"] != "metric":
            continue
        names = shown.setdefault(widget["properties"]["title"], set())
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):
                names.update(re.findall(r'MetricName=\\?"(\w+)\\?"', line[0]["expression"]))
            elif line[0] == NAMESPACE:
                assert line[2:4] == ["service", product_metric_dimensions()["service"]], line
                names.add(line[1])
    return shown


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


def product_metrics_referenced() -> set[str]:
    """Every metric of the product's namespace that an alarm or the dashboard reads."""
    names = {metric for alarm in ALARMS for ns, metric in watched(alarm) if ns == NAMESPACE}
    return names.union(*dashboard_metrics().values())
