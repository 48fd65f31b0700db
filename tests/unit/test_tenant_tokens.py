"""The consumers' API (pleo_scope.tenant_tokens): an explicit `TenantTokens` built from the
settings it is given, and shortcuts that share one per distinct set of settings, never the
first one built whatever the settings asked for later. (Building makes boto3 clients only:
no AWS call here; the protocol itself is tested in test_oauth_refresher and e2e.)"""

from __future__ import annotations

import pytest

from pleo_scope import tenant_tokens
from pleo_scope.errors import ConfigurationError
from pleo_scope.tenant_tokens import OAuthAppSettings, TenantTokens

APP_A = {
    "TENANT_TABLE_NAME": "tenants-a",
    "TENANT_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/a",
    "PLEO_OAUTH_TOKEN_URL": "https://a.invalid/oauth/token",
    "PLEO_OAUTH_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a",
}


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tenant_tokens, "_shared", {})
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


@pytest.mark.parametrize("name", sorted(APP_A))
def test_each_setting_tells_a_refresher_apart(name: str) -> None:
    other = {**APP_A, name: APP_A[name] + "-other"}
    assert tenant_tokens.shared(other) is not tenant_tokens.shared(APP_A)
    assert tenant_tokens.refresher(other) is tenant_tokens.shared(other).refresher
    assert OAuthAppSettings.from_env(other) != OAuthAppSettings.from_env(APP_A)


def test_the_same_settings_share_one_refresher_whatever_else_the_environment_holds() -> None:
    first = tenant_tokens.refresher(APP_A)
    assert tenant_tokens.refresher({**APP_A, "LOG_LEVEL": "DEBUG"}) is first
    assert tenant_tokens.tenant_auth("C0FFEE", env=dict(APP_A))._refresher is first
    assert len(tenant_tokens._shared) == 1


def test_without_env_the_process_environment_as_it_is_at_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in APP_A.items():
        monkeypatch.setenv(name, value)
    before = tenant_tokens.refresher()
    assert tenant_tokens.refresher() is before
    monkeypatch.setenv("TENANT_TABLE_NAME", "tenants-b")
    assert tenant_tokens.refresher() is not before
    assert tenant_tokens.refresher() is tenant_tokens.refresher(
        {**APP_A, "TENANT_TABLE_NAME": "tenants-b"}
    )


def test_an_explicit_object_uses_its_own_settings_and_normalises_the_company() -> None:
    tokens = TenantTokens(APP_A)
    assert tokens.refresher is not TenantTokens(APP_A).refresher  # one each: build it once
    auth = tokens.auth("  0F1E2D3C-4B5A-4978-8A6B-5C4D3E2F1A0B ")
    assert auth.company_id == "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    assert tenant_tokens._shared == {}  # not one of the shared ones


@pytest.mark.parametrize("name", sorted(APP_A))
def test_a_missing_setting_is_named(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name} is not set"):
        TenantTokens({**APP_A, name: " "})
    with pytest.raises(ConfigurationError, match=f"{name} is not set"):
        tenant_tokens.access_token("c", env={k: v for k, v in APP_A.items() if k != name})
