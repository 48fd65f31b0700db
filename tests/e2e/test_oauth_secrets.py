"""No OAuth secret in a log line at DEBUG, an error or the output: the consumer API
(pleo_scope.tenant_tokens, built from the environment as a consumer builds it) refreshes a
grant whose client secret is a canary, on 401 and after a lost answer, with every logger at
DEBUG; neither the client secret nor any refresh or access token the grant ever had appears,
in plain text or base64 (HTTP Basic, KMS bodies), the relink metric's EMF on stdout included."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from pleo_scope.aws.metrics import RELINK_METRIC
from pleo_scope.errors import RelinkNeeded
from pleo_scope.tenant_tokens import access_token, tenant_auth
from pleo_scope.tenants import OAuthCredential, StoredToken, Tenant
from tooling.pleo_sim.oauth import TokenFault
from tooling.testkit.harness import Stack
from tooling.testkit.tenants import oauth_world

PINNED = ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "httpcore")
"""The loggers the layer pins at INFO whatever level the process runs at (they log whole
bodies and headers at DEBUG): an operator's DEBUG does not reach them, so neither does this."""


@contextmanager
def the_process_at_debug() -> Iterator[None]:
    """What LOG_LEVEL=DEBUG makes of a process: root and every named logger at DEBUG (the
    function's own pleo_scope loggers included), the pinned ones aside; then restored."""
    loggers = [logging.getLogger()] + [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and not name.startswith(PINNED)
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


CLIENT_ID = "canary-client"
CLIENT_SECRET = "client-secret-LEAKCANARY-3b9e"


def test_no_token_or_client_secret_in_any_log_line_at_debug(
    stack: Stack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    world = oauth_world(stack)
    simulator, oauth = stack.simulator, stack.simulator.oauth
    oauth.clients[CLIENT_ID] = CLIENT_SECRET
    secret_arn = stack.aws.client("secretsmanager").create_secret(
        Name=f"oauth-client-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}),
    )["ARN"]
    env = {
        "TENANT_TABLE_NAME": world.table,
        "TENANT_KEY_ARN": world.key,
        "PLEO_OAUTH_TOKEN_URL": world.token_url,
        "PLEO_OAUTH_CLIENT_SECRET_ARN": secret_arn,
    }
    companies = [str(uuid.uuid4()), str(uuid.uuid4())]
    grants = []
    for company in companies:
        issued = oauth.grant(company, client_id=CLIENT_ID, access_lifetime=600)
        grants.append(oauth.grant_of(issued.refresh_token))
        credential = OAuthCredential(StoredToken(plain=issued.refresh_token))
        world.registry().put(Tenant(company, "active", credential))
    jobs = [stack.new_job(items=3, company_id=company) for company in companies]
    errors: list[str] = []

    # The consumer API is imported (its loggers quieted) before everything goes to DEBUG.
    with caplog.at_level(logging.DEBUG), the_process_at_debug():
        # What a consumer process does (its refresher is made from `env` on first use).
        http = httpx.Client(base_url=stack.aws.function_env["PLEO_API_BASE_URL"])
        auth = tenant_auth(companies[0], env=env)
        assert http.get(f"/v3/export-jobs/{jobs[0].id}", auth=auth).status_code == 200
        oauth.expire_access_tokens(companies[0])  # Pleo rejects it before we expected
        assert http.get(f"/v3/export-jobs/{jobs[0].id}", auth=auth).status_code == 200
        # The other company's grant: its answer lost after Pleo rotated.
        simulator.inject_token_fault(TokenFault("lose_answer"))
        with pytest.raises(RelinkNeeded) as relink:
            access_token(companies[1], env=env)
        errors.append(repr(relink.value))
        errors.append(str(relink.value))

    assert oauth.call_count_for(companies[0], "rotated") == 2  # first token, then the 401
    assert oauth.call_count_for(companies[1], "reused") == 1
    printed = capfd.readouterr()
    # The consumer's refresher reported the refusal itself: the relink alarm's metric (EMF).
    reports = [json.loads(line) for line in printed.out.splitlines() if RELINK_METRIC in line]
    assert [(r["companyId"], r[RELINK_METRIC]) for r in reports] == [(companies[1], [1.0])]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    everything = "\n".join([printed.out, printed.err, logged, *errors])
    assert "OAuth tokens refreshed" in logged  # the refresher's own lines were searched
    assert "relink_needed" in logged
    assert any(r.name.startswith("botocore") for r in caplog.records)  # DEBUG was on
    assert "token refresh" in everything.lower() or "OAuth tokens refreshed" in printed.out
    secrets = {CLIENT_SECRET}
    for grant in grants:
        assert grant is not None
        secrets |= {grant.refresh_token, grant.access_token, *grant.spent}
    assert len(secrets) >= 5
    forms = set()
    for secret in secrets:
        forms |= {secret, base64.b64encode(secret.encode()).decode()}
    forms.add(base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode())
    forms.add("LEAKCANARY")
    for form in forms:
        at = everything.find(form)
        assert at == -1, everything[max(0, at - 300) : at + 100]
