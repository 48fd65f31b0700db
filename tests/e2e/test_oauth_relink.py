"""A managed-OAuth tenant whose grant Pleo refuses while its walk loops in Step Functions (the
real ASL, run by moto), and the recovery docs/operating.md gives (the relink alarm's row):
the loop stops on the final `RelinkNeeded` with the checkpoint kept and nothing published;
the operator stores a new grant (`tenant set-credential --oauth`, the refresh token on
standard input) and re-sends the trigger (`retrigger`); the walk resumes from its checkpoint
(no page walked before is requested again) and publishes once."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from click.testing import Result

from pleo_scope.aws.metrics import RELINK_METRIC
from pleo_scope.errors import RelinkNeeded
from pleo_scope.tenant_tokens import TenantTokens
from pleo_scope.tenants import Tenant
from tooling.ops.cli import EXIT_FAILED, main
from tooling.ops.resources import ENV_OF
from tooling.pleo_sim import Fault, SimJob
from tooling.pleo_sim.app import LoggedRequest
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.cli_runner import CliRunner
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.loop import INVOCATION_SECONDS
from tooling.testkit.tenants import oauth_world

PAGES = 45  # of 10 items, 0.15 s each: three or four invocations of 2.5 s
REVOKED_ON_REQUEST = 22
"""The first invocation makes at most 17 requests (the job check, then one page per 0.15 s of
its 2.5 s): the grant is revoked during a Step Functions iteration."""


def ops(stack: Stack, *args: str, stdin: str | None = None) -> Result:
    physical = stack.aws.physical
    named = [
        *("--endpoint-url", stack.aws.endpoint),
        *("--table", physical["ScopeTable"], "--bucket", physical["ScopeBucket"]),
        *("--state-machine-arn", physical["ScopeJobStateMachine"]),
        *("--function", physical["ScopeJobFunction"]),
        *("--tenant-table", physical["TenantTable"], "--tenant-key", physical["TenantKey.Arn"]),
    ]
    env = dict.fromkeys([*ENV_OF.values(), "TENANT_SECRET_PREFIX"])
    return CliRunner().invoke(main, [*named, *args], env=env, input=stdin)


def pages_answered(log: list[LoggedRequest], job: SimJob) -> list[int]:
    """The offset of every items page Pleo answered (the simulator's cursor names the offset
    it leads to; a cursor is a new string each time, so the offset tells a page asked again)."""
    return [
        _offset(r.query.get("after"))
        for r in log
        if (r.job_id, r.endpoint, r.status) == (job.id, "items", 200)
    ]


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    offset: int = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["o"]
    return offset


def tenant(stack: Stack, company: str) -> Tenant:
    return oauth_world(stack).registry().get(company)


def test_a_grant_refused_in_the_loop_stops_it_and_a_new_grant_resumes_from_the_checkpoint(
    stack: Stack,
) -> None:
    company = oauth_world(stack).onboard(access_lifetime=3600)
    job = stack.simulator.add_job(
        SimJob(str(uuid.uuid4()), generated_items=PAGES * 10, company_id=company)
    )
    stack.simulator.inject(
        job.id,
        Fault("latency", seconds=0.15),
        # The company uninstalls the app mid-walk: every token of its grant stops working.
        Fault("revoke", on_requests=frozenset({REVOKED_ON_REQUEST}), endpoint="any"),
    )
    trigger = {"jobId": job.id, "companyId": company}
    with route_lambda(stack.app.lambda_handler, INVOCATION_SECONDS) as invocations:
        first = stack.invoke(trigger, timeout_seconds=INVOCATION_SECONDS)
        assert first["done"] is False  # handed over to the state machine
        loop = follow_walk(stack.aws, job.id).final

        # The loop stopped on the typed final error, at once: the ASL retries none of it.
        assert (loop["status"], loop["error"]) == ("FAILED", "RelinkNeeded")
        failed = [i for i in invocations if "error" in i]
        assert [i["error"] for i in failed] == ["RelinkNeeded"]
        assert invocations[-1] is failed[0]
        assert tenant(stack, company).status == "relink_needed"
        token_calls = stack.simulator.oauth.call_count_for(company)
        assert stack.simulator.oauth.call_count_for(company, "invalid_grant") == 1
        # Nothing published, the checkpoint kept (the pages fetched before the refusal too).
        assert stack.manifest_of(job.id) is None
        assert not [k for k in stack.s3_keys(job.id) if k.endswith(("scope.jsonl", "scope.json"))]
        assert [u for u in stack.drain_queue() if u["jobId"] == job.id] == []
        walk = stack.walk_record(job.id)
        assert walk is not None
        assert (walk["phase"], walk["finalError"]["name"]) == ("walking", {"S": "RelinkNeeded"})
        walked = pages_answered(stack.simulator.log, job)
        assert int(walk["pagesFetched"]) == len(walked) < PAGES
        status = ops(stack, "status", job.id)
        assert status.exit_code == EXIT_FAILED, status.output
        assert "RelinkNeeded" in status.stdout

        # A re-send before a new grant is stored fails at once: no request, no token call.
        requests = stack.simulator.request_count(job.id)
        refused = ops(stack, "retrigger", job.id, "--wait")
        assert refused.exit_code != 0
        assert "RelinkNeeded" in refused.output
        assert stack.simulator.request_count(job.id) == requests
        assert stack.simulator.oauth.call_count_for(company) == token_calls

        # The company installs the app again; the operator stores the grant and re-sends.
        issued = stack.simulator.grant(company, access_lifetime=3600)
        stored = ops(
            stack, "tenant", "set-credential", company, "--oauth", stdin=issued.refresh_token + "\n"
        )
        assert stored.exit_code == 0, stored.output
        assert issued.refresh_token not in stored.output
        assert tenant(stack, company).status == "active"
        before = len(stack.simulator.log)
        sent = ops(stack, "retrigger", job.id, "--wait", "--json")
        assert sent.exit_code == 0, sent.output
        resumed: dict[str, Any] = json.loads(sent.stdout)["result"]
        assert resumed["done"] is False  # 24 pages or more left: handed over again
        assert follow_walk(stack.aws, job.id).final["status"] == "SUCCEEDED"

    # Resumed from the checkpoint: no page walked before the refusal was asked for again.
    # (A page may be answered twice within the resumed walk: a read timed out under load and
    # retried. Never one walked before.)
    again = pages_answered(stack.simulator.log[before:], job)
    assert set(again).isdisjoint(walked)
    assert set(walked) | set(again) == {page * 10 for page in range(PAGES)}
    # ...and with the new grant's tokens from the first request (the refused one's dropped).
    assert [r.status for r in stack.simulator.log[before:] if r.job_id == job.id].count(401) == 0
    walk = stack.walk_record(job.id)
    assert walk is not None
    assert (walk["runId"], walk["phase"], int(walk["pagesFetched"])) == ("1", "published", PAGES)
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job), company)
    assert stack.simulator.oauth.call_count_for(company, "invalid_grant") == 1
    assert ops(stack, "status", job.id).exit_code == 0


class RecordedReports:
    def __init__(self) -> None:
        self.companies: list[str] = []

    def relink_needed(self, company_id: str) -> None:
        self.companies.append(company_id)


def test_a_consumer_s_own_report_hears_the_refusal(
    stack: Stack, capfd: pytest.CaptureFixture[str]
) -> None:
    """A consumer whose standard output is no metric (not Lambda) gives TenantTokens a
    report of its own (docs/consumers.md): it hears the refusal, instead of stdout's EMF."""
    env = {
        name: stack.aws.function_env[name]
        for name in (
            "TENANT_TABLE_NAME",
            "TENANT_KEY_ARN",
            "PLEO_OAUTH_TOKEN_URL",
            "PLEO_OAUTH_CLIENT_SECRET_ARN",
        )
    }
    company = oauth_world(stack).onboard()
    stack.simulator.oauth.revoke_company(company)  # uninstalled before its first refresh
    reports = RecordedReports()
    tokens = TenantTokens(env, reports=reports)
    capfd.readouterr()
    with pytest.raises(RelinkNeeded):
        tokens.access_token(company)
    assert reports.companies == [company]
    assert tenant(stack, company).status == "relink_needed"
    assert RELINK_METRIC not in capfd.readouterr().out
