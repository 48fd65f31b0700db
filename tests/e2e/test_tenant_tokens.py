"""A consumer process that sends for two OAuth apps (two deployments' settings) gets each
app's own refresher: a company installed in the second app is refreshed with that app's
client credentials, not with those of the first one the process happened to build (Pleo would
answer `invalid_grant` to the wrong app, and the company would be set relink_needed). And the
README's consumer example, run as it stands."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from pleo_scope.tenant_tokens import TenantTokens, access_token
from pleo_scope.tenants import OAuthCredential, StoredToken, Tenant
from tooling.testkit.harness import Stack
from tooling.testkit.tenants import oauth_world


def test_each_app_s_settings_get_their_own_refresher(stack: Stack) -> None:
    world = oauth_world(stack)
    oauth = stack.simulator.oauth
    oauth.clients["second-app"] = "second-app-secret"
    second_secret = stack.aws.client("secretsmanager").create_secret(
        Name=f"oauth-client-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"clientId": "second-app", "clientSecret": "second-app-secret"}),
    )["ARN"]
    first_app = {
        name: stack.aws.function_env[name]
        for name in (
            "TENANT_TABLE_NAME",
            "TENANT_KEY_ARN",
            "PLEO_OAUTH_TOKEN_URL",
            "PLEO_OAUTH_CLIENT_SECRET_ARN",
        )
    }
    second_app = {**first_app, "PLEO_OAUTH_CLIENT_SECRET_ARN": second_secret}
    first = world.onboard()
    second, third = str(uuid.uuid4()), str(uuid.uuid4())
    for company in (second, third):
        issued = oauth.grant(company, client_id="second-app")
        credential = OAuthCredential(StoredToken(plain=issued.refresh_token))
        world.registry().put(Tenant(company, "active", credential))

    assert access_token(first, env=first_app).version == 1
    assert access_token(second, env=second_app).version == 1  # the second app's credentials
    assert TenantTokens(second_app).access_token(third).version == 1
    for company in (first, second, third):
        assert oauth.call_count_for(company) == oauth.call_count_for(company, "rotated") == 1
        assert world.registry().get(company).status == "active"


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_s_consumer_example_sends_as_the_unit_s_company(stack: Stack) -> None:
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
        if "TenantTokens" in block
    ]
    pleo_url = stack.aws.function_env["PLEO_API_BASE_URL"]
    namespace: dict[str, Any] = {}
    # The process's environment is the function's (the local stack's): as a consumer's is.
    exec(example.replace("https://external.pleo.io", pleo_url), namespace)  # noqa: S102
    company = oauth_world(stack).onboard()
    job = stack.new_job(items=3, company_id=company)
    namespace["report"]({"companyId": company, "jobId": job.id}, [])
    assert stack.simulator.oauth.call_count_for(company, "rotated") == 1
