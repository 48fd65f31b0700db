"""Resolving a trigger's company (pleo_scope.tenants_access): the default tenant without one,
typed refusals for an unknown, disabled or relink-needed company, and the secret naming
convention that keeps one company's trigger from reading another's credential."""

from __future__ import annotations

import pytest

from pleo_scope.credentials import Credential, StaticCredential
from pleo_scope.errors import (
    ConfigurationError,
    InvalidTenantRecord,
    RelinkNeeded,
    TenantDisabled,
    UnknownTenant,
)
from pleo_scope.settings import Settings
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantStatus,
)
from pleo_scope.tenants_access import (
    KindCheckedSource,
    TenantResolver,
    require_own_secret,
    secret_name_of,
)
from tests.fakes import MemoryTenantRegistry

A = "5c1e0a3e-7d7b-4b8e-9a0e-3f2d1c0b9a87"
B = "0b8d2f4e-1a2b-4c3d-8e9f-a0b1c2d3e4f5"
PREFIX = "pleo-export-scope/tenants/"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
REQUIRED = {  # the settings every deployment sets
    "PLEO_API_BASE_URL": "https://external.pleo.io",
    "PLEO_API_SECRET_ARN": f"{ARN}pleo",
    "SCOPE_TABLE_NAME": "scope",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "SCOPE_BUCKET_NAME": "bucket",
    "SCOPE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/scope.fifo",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:scope",
}


def api_key_tenant(company: str, secret_name: str, status: TenantStatus = "active") -> Tenant:
    return Tenant(company, status, ApiKeyCredential(f"{ARN}{secret_name}-AbC123"))


def resolver(*tenants: Tenant) -> TenantResolver:
    registry = MemoryTenantRegistry()
    for tenant in tenants:
        registry.put(tenant)
    return TenantResolver(registry, PREFIX)


def test_a_trigger_without_a_company_is_the_default_tenant_and_reads_no_registry() -> None:
    tenants = resolver()
    access = tenants.resolve(None)
    assert access.company_id is None
    assert access.credential is None
    assert access.max_requests_per_minute is None
    assert tenants.reads == 0


def test_without_a_registry_only_the_default_tenant_exists() -> None:
    tenants = TenantResolver(None)
    assert tenants.resolve(None).tenant is None
    with pytest.raises(UnknownTenant, match="TENANT_TABLE_NAME"):
        tenants.resolve(A)


def test_an_active_company_resolves_to_its_record_and_limit() -> None:
    tenant = Tenant(A, "active", ApiKeyCredential(f"{ARN}{PREFIX}{A}-AbC123"), 120)
    access = resolver(tenant).resolve(A)
    assert access.tenant == tenant
    assert access.max_requests_per_minute == 120
    assert access.client_key == (A, "apiKey", f"{ARN}{PREFIX}{A}-AbC123", 120)


@pytest.mark.parametrize(
    ("status", "error"), [("disabled", TenantDisabled), ("relink_needed", RelinkNeeded)]
)
def test_a_company_that_may_not_walk_is_refused_typed(
    status: TenantStatus, error: type[Exception]
) -> None:
    with pytest.raises(error, match=A):
        resolver(api_key_tenant(A, f"{PREFIX}{A}", status)).resolve(A)


def test_an_unknown_company_is_refused_typed() -> None:
    with pytest.raises(UnknownTenant, match=B):
        resolver(api_key_tenant(A, f"{PREFIX}{A}")).resolve(B)


def test_the_registry_is_read_again_on_every_resolution() -> None:
    """An operator's `disable` stops the very next invocation: nothing is cached."""
    registry = MemoryTenantRegistry()
    registry.put(api_key_tenant(A, f"{PREFIX}{A}"))
    tenants = TenantResolver(registry, PREFIX)
    tenants.resolve(A)
    registry.tenants[A] = api_key_tenant(A, f"{PREFIX}{A}", "disabled")
    with pytest.raises(TenantDisabled):
        tenants.resolve(A)
    assert tenants.reads == 2


@pytest.mark.parametrize(
    "name",
    [
        f"{PREFIX}{B}",  # another company's secret
        f"other/{A}",  # outside the prefix
        f"{PREFIX}{A}x",  # a longer id
        f"{PREFIX}{A}-evil",  # not AWS's 6-character suffix
        f"pleo-export-scope/tenants-old/{A}",  # a sibling of the prefix
    ],
)
def test_a_record_naming_a_secret_not_its_own_is_refused_before_any_read(name: str) -> None:
    record = Tenant(A, "active", AccessTokenCredential(f"{ARN}{name}"))
    with pytest.raises(InvalidTenantRecord, match=f"company {A}.*not this company's secret"):
        resolver(record).resolve(A)


@pytest.mark.parametrize(
    "arn",
    [
        f"{ARN}{PREFIX}{A}-AbC123",
        f"{ARN}{PREFIX}{A}/pleo-AbC123",
        f"{ARN}{PREFIX}{A}",
    ],
)
def test_the_own_secret_convention_accepts_the_company_s_names(arn: str) -> None:
    require_own_secret(arn, A, PREFIX)


def test_only_secrets_manager_arns_carry_a_secret_name() -> None:
    assert secret_name_of(f"{ARN}{PREFIX}{A}-AbC123") == f"{PREFIX}{A}-AbC123"
    assert secret_name_of("arn:aws:ssm:eu-west-1:1:parameter/x") is None
    assert secret_name_of(f"{PREFIX}{A}") is None
    with pytest.raises(InvalidTenantRecord):
        require_own_secret(f"{PREFIX}{A}", A, PREFIX)


def test_an_oauth_company_needs_no_secret_of_its_own() -> None:
    record = Tenant(A, "active", OAuthCredential(StoredToken(plain="refresh")))
    assert resolver(record).resolve(A).client_key[:2] == (A, "oauth")


def test_a_secret_holding_another_kind_than_the_record_declares_is_refused() -> None:
    declared = ApiKeyCredential(f"{ARN}{PREFIX}{A}-AbC123")
    source = KindCheckedSource(
        StaticCredential(Credential("accessToken", "tok-CANARY")), A, declared
    )
    with pytest.raises(InvalidTenantRecord) as refused:
        source.get()
    assert "tok-CANARY" not in str(refused.value)
    assert "'apiKey'" in str(refused.value)
    good = KindCheckedSource(StaticCredential(Credential("apiKey", "key")), A, declared)
    assert good.get(force_fetch=True).kind == "apiKey"


def test_the_registry_settings_default_to_none_and_the_documented_prefix() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.tenant_table is None
    assert settings.tenant_secret_prefix == PREFIX
    tenants = Settings.from_env(
        {**REQUIRED, "TENANT_TABLE_NAME": "tenants", "TENANT_SECRET_PREFIX": "acme/pleo/"}
    )
    assert (tenants.tenant_table, tenants.tenant_secret_prefix) == ("tenants", "acme/pleo/")
    with pytest.raises(ConfigurationError, match="TENANT_SECRET_PREFIX='acme/pleo' must end"):
        Settings.from_env({**REQUIRED, "TENANT_SECRET_PREFIX": "acme/pleo"})
