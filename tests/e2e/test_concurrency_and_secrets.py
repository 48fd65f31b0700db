"""Overlapping invocations of one job, and the credential's absence from every output."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.errors import CredentialRejected, InvalidSecret, PleoUnavailable, WalkInProgress
from pleo_scope.pleo_client import PleoClient, RetryPolicy
from tooling.pleo_sim import Fault
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.harness import Stack
from tooling.testkit.samples import load_event


class InvokeDuringWalk:
    """Observer: when the walk writes its first page, invoke `event` (a second delivery
    arriving while the first holds the job) and keep what it answered."""

    def __init__(self, stack: Stack, event: dict[str, Any]) -> None:
        self.stack, self.event = stack, event
        self.outcome: Any = None

    def on_step(self, step: str, job_id: str, number: int) -> None:
        if step == "page_written" and number == 1 and self.outcome is None:
            try:
                self.outcome = self.stack.invoke(self.event)
            except Exception as error:
                self.outcome = error


@pytest.mark.parametrize(
    ("second", "refusal"),
    [
        ("eventbridge-export-job-claimed.json", IdempotencyAlreadyInProgressError),
        ("direct-invoke.json", IdempotencyAlreadyInProgressError),  # a manual invoke
        ("step-functions-loop-state.json", WalkInProgress),  # the loop, mid-walk
    ],
)
def test_a_second_invocation_during_a_walk_is_refused_and_nothing_doubles(
    stack: Stack, second: str, refusal: type[Exception]
) -> None:
    job = stack.new_job(items=45)
    observer = InvokeDuringWalk(stack, load_event(second, job.id))
    with stack.app.app.injected(observer=observer):
        first = stack.invoke(load_event("eventbridge-export-job-claimed.json", job.id))
    assert isinstance(observer.outcome, refusal), observer.outcome
    assert first["done"] is True
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))
    # Once the walk is over, a repeat gets the stored result.
    assert stack.invoke(load_event("eventbridge-export-job-claimed.json", job.id)) == first


KEY = "pleo-key-LEAKCANARY-7f3a9c"
TOKEN = "pleo-token-LEAKCANARY-5e1d"


def test_the_credential_never_reaches_logs_errors_or_metrics(
    stack: Stack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secrets = stack.aws.client("secretsmanager")
    arn = stack.app.settings.secret_arn
    stack.simulator.api_keys[KEY] = {"export-jobs:read"}
    errors: list[str] = []

    def use_secret(secret: dict[str, str]) -> None:
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(secret))
        stack.app.app.secrets.clear_cache()

    try:
        with caplog.at_level(logging.DEBUG):
            use_secret({"apiKey": KEY})
            stack.invoke({"jobId": stack.new_job(items=25).id})  # a full run
            revoked = stack.new_job(items=25)
            stack.simulator.inject(revoked.id, Fault("revoke", frozenset({2})))
            with pytest.raises(CredentialRejected) as rejected:
                stack.invoke({"jobId": revoked.id})
            errors.append(repr(rejected.value))
            stack.simulator.api_keys[KEY] = {"export-jobs:read"}
            use_secret({"apiKey": KEY, "accessToken": KEY})
            with pytest.raises(InvalidSecret) as invalid:
                stack.invoke({"jobId": stack.new_job(items=5).id})
            errors.append(repr(invalid.value))
            # A copy-paste's whitespace around the credential: stripped, a full run.
            use_secret({"apiKey": f" {KEY}\r\n"})
            assert stack.invoke({"jobId": stack.new_job(items=25).id})["done"]
            # Non-ASCII or a line break inside: InvalidSecret before any request.
            for bad in (f"{TOKEN}\u00e9", f"{TOKEN}\nX-Injected: 1"):
                use_secret({"accessToken": bad})
                job = stack.new_job(items=5)
                with pytest.raises(InvalidSecret, match="outside printable ASCII") as non_ascii:
                    stack.invoke({"jobId": job.id})
                assert stack.simulator.request_count(job.id) == 0
                assert stack.walk_record(job.id) is None  # nothing written
                assert stack.s3_keys(job.id) == []
                errors.append(repr(non_ascii.value))
            # Below the secret's check: a header httpx/h11 refuse is logged by httpcore at
            # DEBUG with its value; those loggers stay quiet.
            client = PleoClient(
                replace(stack.app.settings.pleo, retry=RetryPolicy(max_attempts=2)),
                CredentialAuth.of(Credential("accessToken", f"{TOKEN}\n")),
            )
            with pytest.raises(PleoUnavailable) as refused:
                client.get_job(JobRef(stack.new_job(items=1).id), Budget.unbounded(SystemClock()))
            client.close()
            errors.append(repr(refused.value))
    finally:
        use_secret({"apiKey": "sim-api-key"})
        stack.drain_queue()
    printed = capfd.readouterr()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    everything = "\n".join([printed.out, printed.err, logged, *errors])
    assert "CloudWatchMetrics" in printed.out  # the metrics were in what we searched
    assert "scope step finished" in everything  # and so were the logs
    assert "send_request_headers" not in logged  # httpcore's DEBUG records stay out
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    for secret_form in (KEY, basic, TOKEN, "LEAKCANARY", "X-Injected"):
        at = everything.find(secret_form)
        assert at == -1, everything[max(0, at - 300) : at + 100]
