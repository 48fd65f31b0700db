"""The template's monitoring, read as CloudWatch reads it: which metrics each alarm and the
dashboard read, the conditions and substitutions resolved."""

from __future__ import annotations

import json
import re
from typing import Any

from tooling.build.template import Template

TEMPLATE = Template.load()
ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
NAMESPACE = "PleoExportScope"  # the function's metrics (app.py's Metrics)


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
    if not isinstance(text, str):
        raise TypeError(f"not a string or an Fn::Sub: {value!r}")
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


def product_metric_dimensions() -> dict[str, str]:
    """What the function's metrics are dimensioned by: its Powertools service name."""
    return {"service": TEMPLATE.environment("ScopeJobFunction")["POWERTOOLS_SERVICE_NAME"]}


def dashboard() -> dict[str, Any]:
    (logical_id,) = TEMPLATE.of_type("AWS::CloudWatch::Dashboard")
    body: dict[str, Any] = json.loads(
        substituted(TEMPLATE.properties(logical_id)["DashboardBody"], "1")
    )
    return body


def dashboard_metrics() -> dict[str, set[str]]:
    """Widget title -> the product's metric names it shows (SEARCH expressions included)."""
    service = ["service", product_metric_dimensions()["service"]]
    shown: dict[str, set[str]] = {}
    for widget in dashboard()["widgets"]:
        if widget["type"] != "metric":
            continue
        names = shown.setdefault(widget["properties"]["title"], set())
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):
                names.update(re.findall(r'MetricName=\\?"(\w+)\\?"', line[0]["expression"]))
            elif line[0] == NAMESPACE:
                if line[2:4] != service:  # what the function emits is read by nothing else
                    raise ValueError(f"a dashboard metric not dimensioned by {service}: {line}")
                names.add(line[1])
    return shown


def product_metrics_referenced() -> set[str]:
    """Every metric of the product's namespace that an alarm or the dashboard reads."""
    names = {metric for alarm in ALARMS for ns, metric in watched(alarm) if ns == NAMESPACE}
    return names.union(*dashboard_metrics().values())
