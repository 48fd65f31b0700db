"""Numbers end to end (issue 19, contract v3): a number that a double cannot hold is carried
into scope.jsonl exactly as Pleo sent it, never as `Infinity` (not JSON); a page holding the
literal `NaN` is a MalformedResponse; `verify` rejects a line that is not JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pleo_scope.errors import MalformedResponse
from tooling.pleo_sim import JsonLiteral, SimJob
from tooling.pleo_sim.app import dumps
from tooling.pleo_sim.jobs import make_item
from tooling.testkit.harness import Stack
from tooling.testkit.ops_cli import ops

# Texts no double holds: past its range, below its smallest subnormal, and an integer past
# Python's int() limit; then numbers a double holds, which stay as today.
CARRIED = {
    "overflow": "1e400",
    "negativeOverflow": "-1.5E+400",
    "underflow": "2.5e-400",
    "hugeInteger": "7" * 5000,
}
ORDINARY = {"zero": "0e-400", "integer": "123456789012345678901234567890", "amount": "12.5"}


def strict(line: bytes) -> Any:
    """JSON as the standard says: no NaN, no Infinity."""

    def refuse(literal: str) -> Any:
        raise ValueError(f"{literal} is not JSON")

    return json.loads(line, parse_constant=refuse, parse_int=str)  # ints of any length


def job_with(stack: Stack, values: dict[str, str]) -> tuple[SimJob, str]:
    entry_id = "00000000-0000-4000-8000-00000000000a"  # sorts first: line 0 of the scope
    item = make_item("", entry_id, "pending", **{k: JsonLiteral(v) for k, v in values.items()})
    job = stack.new_job(items=12)
    item["exportJobId"] = job.id
    job.items.append(item)
    return job, dumps(item, sort_keys=True, separators=(",", ":"))


def test_numbers_a_double_cannot_hold_are_written_as_pleo_sent_them(stack: Stack) -> None:
    job, sent = job_with(stack, CARRIED | ORDINARY)
    result = stack.invoke({"jobId": job.id})
    assert result["done"] is True

    scope = stack.s3_object(result["scope"]["key"])
    lines = scope.splitlines(keepends=True)
    assert lines[0] == (sent.replace('"zero":0e-400', '"zero":0.0') + "\n").encode()
    for name, text in CARRIED.items():
        assert f'"{name}":{text}'.encode() in lines[0]
    assert b'"integer":123456789012345678901234567890,' in lines[0]
    for line in lines:
        strict(line)  # every line JSON: no Infinity, no NaN
    assert (
        stack.drain_queue()[0]["items"][0]["accountingEntryId"]
        == strict(lines[0])["accountingEntryId"]
    )
    verified = ops(stack, "verify", job.id)
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_page_holding_a_literal_that_is_not_json_is_malformed(stack: Stack, literal: str) -> None:
    job, _ = job_with(stack, {"amount": literal})
    with pytest.raises(MalformedResponse, match=f"holds the literal {literal}"):
        stack.invoke({"jobId": job.id})
    assert not [key for key in stack.s3_keys(job.id) if key.endswith(("scope.jsonl", "scope.json"))]
    assert stack.drain_queue() == []


def test_verify_rejects_a_scope_line_that_is_not_json(stack: Stack) -> None:
    job, _ = job_with(stack, {"overflow": "1e400"})
    result = stack.invoke({"jobId": job.id})
    stack.drain_queue()
    bucket, key = result["scope"]["bucket"], result["scope"]["key"]
    scope = stack.s3_object(key)
    # What the v2 code wrote for 1e400 (and called canonical): Python reads it, JSON not.
    broken = scope.replace(b'"overflow":1e400', b'"overflow":Infinity', 1)
    assert broken != scope
    stack.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=broken)

    verified = ops(stack, "verify", job.id, "--json")
    assert verified.exit_code == 1, verified.output
    checks = {c["check"]: c for c in json.loads(verified.stdout)["checks"]}
    assert checks["serialisation"]["ok"] is False
    assert "line 0 is not JSON" in checks["serialisation"]["detail"]
