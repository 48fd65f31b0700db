"""The metrics the alarms and the dashboard read are the ones the function emits (CloudWatch
embedded metric format on stdout), with the dimensions they are read by."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pleo_scope.errors import JobNotClaimed, RelinkNeeded
from tooling.pleo_sim import Fault, SimJob
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.monitoring import NAMESPACE, product_metrics_referenced
from tooling.testkit.tenants import oauth_world


def emitted(output: str) -> list[dict[str, Any]]:
    """Each EMF record: {metric name: value, ..., "dimensions": [[...]]}, PleoExportScope only."""
    records = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        if "_aws" not in blob:
            continue  # a log line
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if directive["Namespace"] != NAMESPACE:
                continue
            names = [m["Name"] for m in directive["Metrics"]]
            records.append(
                {
                    **{n: _value(blob[n]) for n in names},
                    "dimensions": [sorted(d) for d in directive["Dimensions"]],
                    "service": blob.get("service"),
                    "error": blob.get("error"),
                }
            )
    return records


def _value(value: float | list[float]) -> float:
    """EMF allows a list of values for one metric in one record; Powertools writes lists."""
    return sum(value) if isinstance(value, list) else value


def test_every_metric_the_alarms_and_the_dashboard_read_is_emitted(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # A job done in one invocation.
    stack.invoke({"jobId": stack.new_job(items=45).id})
    done = emitted(capsys.readouterr().out)
    # A job handed over to the state machine: the first invocation ends unfinished.
    slow = stack.new_job(items=200)  # 20 pages of 100 ms: more than one 2.5-second invocation
    stack.simulator.inject(slow.id, Fault("latency", seconds=0.1))
    with route_lambda(stack.app.lambda_handler, 2.5):
        first = stack.invoke({"jobId": slow.id}, timeout_seconds=2.5)
        assert first["done"] is False
        assert follow_walk(stack.aws, slow.id).final["status"] == "SUCCEEDED"
    unfinished = emitted(capsys.readouterr().out)
    # A job that fails.
    with pytest.raises(JobNotClaimed):
        stack.invoke({"jobId": stack.new_job(items=5, status="pending").id})
    failed = emitted(capsys.readouterr().out)
    # An OAuth tenant whose grant Pleo refuses (the company uninstalled the app): the
    # refresher reports it, and the walk fails on it.
    company = oauth_world(stack).onboard()
    refused = stack.simulator.add_job(
        SimJob(str(uuid.uuid4()), generated_items=5, company_id=company)
    )
    stack.simulator.inject(refused.id, Fault("revoke", on_requests=frozenset({1}), endpoint="any"))
    with pytest.raises(RelinkNeeded):
        stack.invoke({"jobId": refused.id, "companyId": company})
    relinked = emitted(capsys.readouterr().out)

    (finished,) = [r for r in done if "JobsScoped" in r]
    assert finished["dimensions"] == [["service"]]
    assert finished["service"] == "pleo-export-scope"
    assert 0 <= finished["WalkDuration"] < 600
    assert "WalkAge" not in finished
    walk_ages = [r["WalkAge"] for r in unfinished if "WalkAge" in r]
    assert walk_ages, "an invocation that ends unfinished reports the walk's age"
    assert all(0 <= age < 600 for age in walk_ages)
    assert any("WalkDuration" in r for r in unfinished)  # the loop's last invocation
    by_error = [r for r in failed if r["dimensions"] == [["error", "service"]]]
    assert [(r["Failures"], r["error"]) for r in by_error] == [(1.0, "JobNotClaimed")]

    (report,) = [r for r in relinked if "TenantRelinkNeeded" in r]
    assert (report["TenantRelinkNeeded"], report["dimensions"]) == (1.0, [["service"]])
    assert report["service"] == "pleo-export-scope"
    by_error = [r for r in relinked if r["dimensions"] == [["error", "service"]]]
    assert [(r["Failures"], r["error"]) for r in by_error] == [(1.0, "RelinkNeeded")]

    names = {name for r in done + unfinished + failed + relinked for name in r} - {
        "dimensions",
        "service",
        "error",
    }
    missing = product_metrics_referenced() - names
    assert not missing, f"read by an alarm or the dashboard, never emitted: {missing}"
