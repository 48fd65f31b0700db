"""Assertions on what a job published, shared by the tests (tests/conftest.py has pytest
rewrite them, so that a failure shows its values)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pleo_scope.aws.keys import run_scope_key
from tooling.testkit.harness import Stack

UNIT_KEYS = {"jobId", "companyId", "runId", "unit", "unitCount", "items", "scope"}


def assert_units(
    stack: Stack,
    job_id: str,
    units: list[dict[str, Any]],
    scope: bytes | None = None,
    company_id: str | None = None,
) -> list[dict[str, Any]]:
    """The units are contract v3 bodies, in order, cut from their run's scope.jsonl, which is
    `scope` (default: as it is in S3), for `company_id` (None: the default tenant): returns
    their items."""
    size = stack.app.app.service.settings.unit_size
    run_id = units[0]["runId"] if units else 1
    key = run_scope_key(job_id, run_id)
    scope = scope if scope is not None else stack.s3_object(key)
    location = {
        "bucket": stack.aws.physical["ScopeBucket"],
        "key": key,
        "sha256": hashlib.sha256(scope).hexdigest(),
    }
    for number, unit in enumerate(units):
        assert set(unit) == UNIT_KEYS
        assert (unit["jobId"], unit["unit"], unit["unitCount"]) == (job_id, number, len(units))
        assert (unit["companyId"], unit["runId"]) == (company_id, run_id)
        assert unit["scope"] == location
        assert 0 < len(unit["items"]) <= size
        assert len(unit["items"]) == size or number == len(units) - 1
        assert all(
            set(item) == {"accountingEntryId", "status", "position"} for item in unit["items"]
        )
    return [item for unit in units for item in unit["items"]]


def assert_published_exactly_once(
    stack: Stack, job_id: str, expected: bytes, company_id: str | None = None
) -> None:
    """The scope the job's pointer names is the expected bytes; the queue holds its lines once,
    in units, in order, each naming `company_id`."""
    scope = stack.scope_of(job_id)
    assert scope == expected
    lines = [json.loads(line) for line in scope.splitlines()]
    units = [m for m in stack.drain_queue() if m["jobId"] == job_id]
    items = assert_units(stack, job_id, units, company_id=company_id)
    assert [m["accountingEntryId"] for m in items] == [i["accountingEntryId"] for i in lines]
    assert [m["position"] for m in items] == list(range(len(lines)))
    assert [m["status"] for m in items] == [i["status"] for i in lines]
