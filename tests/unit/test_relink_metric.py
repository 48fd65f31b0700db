"""The OAuth refresher's relink report as CloudWatch reads it (aws/metrics.EmfRelinkReports):
one EMF document on stdout, in the namespace and `service` the relink alarm reads whatever
the process's own Powertools settings, the company as a property, nothing else."""

from __future__ import annotations

import json

import pytest

from pleo_scope.aws.metrics import EmfRelinkReports

COMPANY = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"


def test_one_emf_document_in_the_alarm_s_namespace_and_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A consumer's process with Powertools settings of its own.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "a-consumer")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ConsumerMetrics")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    capsys.readouterr()
    EmfRelinkReports().relink_needed(COMPANY)
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "PleoExportScope"
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "TenantRelinkNeeded", "Unit": "Count"}]
    assert {k: v for k, v in document.items() if k != "_aws"} == {
        "service": "pleo-export-scope",
        "TenantRelinkNeeded": [1.0],
        "companyId": COMPANY,
    }


def test_each_report_is_its_own_document(capsys: pytest.CaptureFixture[str]) -> None:
    reports = EmfRelinkReports()
    capsys.readouterr()
    reports.relink_needed(COMPANY)
    reports.relink_needed("another")
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["companyId"], d["TenantRelinkNeeded"]) for d in documents] == [
        (COMPANY, [1.0]),
        ("another", [1.0]),
    ]
