"""Triggers name their company (DESIGN.md, "Tenants"): `companyId` in an EventBridge event's
detail, in a direct invocation and in the loop state, any letter case, used in lower case;
absent or null is the default tenant. A trigger's idempotency record is its company's."""

from __future__ import annotations

import pytest

from pleo_scope.aws.idempotency import record_key
from pleo_scope.contract import JobRef
from pleo_scope.errors import InvalidEvent
from pleo_scope.events import parse_event

JOB = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"
COMPANY = "5C1E0A3E-7D7B-4B8E-9A0E-3F2D1C0B9A87"


def claimed(detail: dict[str, object]) -> dict[str, object]:
    return {
        "version": "0",
        "id": "e",
        "detail-type": "Export Job Claimed",
        "source": "pleo.export-jobs",
        "account": "1",
        "time": "2026-12-03T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


@pytest.mark.parametrize(
    "event",
    [
        claimed({"jobId": JOB, "companyId": COMPANY}),
        {"jobId": JOB, "companyId": COMPANY},
        {"jobId": JOB, "companyId": COMPANY, "continuation": {"runId": 1, "handOver": 1}},
    ],
)
def test_each_trigger_carries_its_company_in_lower_case(event: dict[str, object]) -> None:
    assert parse_event(event).job == JobRef(JOB, COMPANY.lower())


@pytest.mark.parametrize(
    "event",
    [claimed({"jobId": JOB}), {"jobId": JOB}, {"jobId": JOB, "companyId": None}],
)
def test_without_a_company_the_trigger_is_the_default_tenant_s(event: dict[str, object]) -> None:
    assert parse_event(event).job == JobRef(JOB, None)


@pytest.mark.parametrize(
    ("event", "path"),
    [
        (claimed({"jobId": JOB, "companyId": "acme"}), "detail.companyId"),
        ({"jobId": JOB, "companyId": 7}, "companyId"),
    ],
)
def test_a_company_that_is_not_a_uuid_is_an_invalid_event(
    event: dict[str, object], path: str
) -> None:
    with pytest.raises(InvalidEvent, match=f"{path}: Input should be a UUID"):
        parse_event(event)


def test_a_direct_invocation_takes_nothing_else() -> None:
    with pytest.raises(InvalidEvent, match="tenant: Extra inputs are not permitted"):
        parse_event({"jobId": JOB, "tenant": COMPANY})


def test_a_company_s_trigger_has_an_idempotency_record_of_its_own() -> None:
    # The default tenant's key is the job id alone: records from before tenants still answer.
    assert record_key(JobRef(JOB)) == JOB
    assert record_key(JobRef(JOB, COMPANY.lower())) == f"{JOB}#{COMPANY.lower()}"
