"""The tenant registry's contract, on DynamoDB (moto's server) and on the in-memory fake the
unit tests use, side by side: so that the fake cannot drift from the adapter. And the KMS
token cipher on moto's KMS: a token opens only for the company and field it was sealed for."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Protocol

import pytest

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.errors import ConfigurationError, InvalidTenantRecord, UnknownTenant
from pleo_scope.tenants import (
    ApiKeyCredential,
    FreshTokens,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantCredential,
    TenantRegistry,
    TokenField,
)
from tests.fakes import MemoryTenantRegistry
from tooling.testkit.harness import Stack
from tooling.testkit.tenants import tenant_key
from tooling.testkit.tenants import tenant_table as template_tenant_table

NOW = 1_800_000_000.0


class Registry(TenantRegistry, Protocol):
    def put(self, tenant: Tenant) -> None: ...

    def set_credential(self, company_id: str, credential: TenantCredential) -> None: ...


@pytest.fixture(scope="module")
def tenant_table(stack: Stack) -> str:
    return template_tenant_table(stack)


@pytest.fixture(params=["dynamodb", "memory"])
def registry(request: pytest.FixtureRequest, stack: Stack) -> Registry:
    if request.param == "memory":
        return MemoryTenantRegistry()
    table: str = request.getfixturevalue("tenant_table")
    return DynamoTenantRegistry(stack.app.app.dynamodb, table)


def oauth_tenant(**credential: Any) -> Tenant:
    fields: dict[str, Any] = {"refresh_token": StoredToken(plain="refresh-0")} | credential
    return Tenant(str(uuid.uuid4()), "active", OAuthCredential(**fields))


def tokens(n: int) -> FreshTokens:
    # A refresh's expiry keeps its fraction of a second (a 1 s token cut to whole seconds
    # would look expired up to a second early).
    return FreshTokens(f"refresh-{n}".encode(), f"access-{n}".encode(), NOW + 600.25, 600)


def test_unknown_company(registry: Registry) -> None:
    with pytest.raises(UnknownTenant, match="not in the tenant registry"):
        registry.get(str(uuid.uuid4()))


def test_a_record_of_the_design_fields_only_reads_as_version_0(registry: Registry) -> None:
    tenant = oauth_tenant(access_token=StoredToken(plain="access-0"), expires_at=NOW + 0.5)
    registry.put(tenant)
    assert registry.get(tenant.company_id) == tenant
    with pytest.raises(InvalidTenantRecord, match="already in the tenant registry"):
        registry.put(tenant)


def test_one_lease_at_a_time_and_the_holder_reads_the_record_in_the_same_call(
    registry: Registry,
) -> None:
    tenant = oauth_tenant()
    registry.put(tenant)
    held = registry.take_refresh_lease(tenant.company_id, "a", NOW, NOW + 30)
    assert held is not None
    assert held.refresh_lease_expires_at == NOW + 30
    assert held.credential == tenant.credential
    assert registry.take_refresh_lease(tenant.company_id, "b", NOW + 29, NOW + 59) is None
    registry.release_refresh_lease(tenant.company_id, "b")  # not b's: nothing happens
    assert registry.get(tenant.company_id).refresh_lease_expires_at == NOW + 30
    registry.release_refresh_lease(tenant.company_id, "a")
    assert registry.get(tenant.company_id).refresh_lease_expires_at is None
    assert registry.take_refresh_lease(tenant.company_id, "b", NOW + 1, NOW + 31) is not None
    # A lease run out is anyone's.
    assert registry.take_refresh_lease(tenant.company_id, "c", NOW + 32, NOW + 62) is not None
    assert registry.take_refresh_lease(str(uuid.uuid4()), "a", NOW, NOW + 30) is None


def test_both_tokens_in_one_write_on_the_version_read(registry: Registry) -> None:
    tenant = oauth_tenant()
    registry.put(tenant)
    assert registry.take_refresh_lease(tenant.company_id, "a", NOW, NOW + 30) is not None
    stored = registry.store_tokens(tenant.company_id, 0, tokens(1))
    assert stored is not None
    assert stored.version == 1
    assert stored.refresh_lease_expires_at is None  # the write released the lease
    assert stored.access_token_lifetime == 600
    assert stored.credential == OAuthCredential(
        StoredToken(sealed=b"refresh-1"), StoredToken(sealed=b"access-1"), NOW + 600.25
    )
    assert registry.get(tenant.company_id) == stored
    # A writer still on version 0 (its refresh raced, or ran past its lease) changes nothing.
    assert registry.store_tokens(tenant.company_id, 0, tokens(2)) is None
    assert registry.store_tokens(tenant.company_id, 1, tokens(2)) is not None
    assert registry.get(tenant.company_id).version == 2


def test_relink_needed_only_on_the_version_refused(registry: Registry) -> None:
    tenant = oauth_tenant()
    registry.put(tenant)
    assert registry.store_tokens(tenant.company_id, 0, tokens(1)) is not None
    # A newer grant was stored meanwhile: the refusal of the old one changes nothing.
    assert not registry.mark_relink_needed(tenant.company_id, 0)
    assert registry.get(tenant.company_id).status == "active"
    registry.take_refresh_lease(tenant.company_id, "a", NOW, NOW + 30)
    assert registry.mark_relink_needed(tenant.company_id, 1)
    refused = registry.get(tenant.company_id)
    assert refused.status == "relink_needed"
    assert refused.refresh_lease_expires_at is None
    # The new grant: active again, on a version no refresh of the old grant holds.
    registry.set_credential(tenant.company_id, OAuthCredential(StoredToken(plain="new-grant")))
    relinked = registry.get(tenant.company_id)
    assert (relinked.status, relinked.version) == ("active", 2)
    assert relinked.credential == OAuthCredential(StoredToken(plain="new-grant"))
    assert registry.store_tokens(tenant.company_id, 1, tokens(3)) is None


def test_tokens_go_only_to_an_oauth_record(registry: Registry) -> None:
    tenant = Tenant(str(uuid.uuid4()), "active", ApiKeyCredential("arn:secret"))
    registry.put(tenant)
    assert registry.store_tokens(tenant.company_id, 0, tokens(1)) is None
    assert registry.get(tenant.company_id) == tenant


def test_racing_lease_takers_get_one_lease(stack: Stack, tenant_table: str) -> None:
    """Twenty processes' registries race for one tenant's free lease: exactly one wins."""
    tenant = oauth_tenant()
    DynamoTenantRegistry(stack.app.app.dynamodb, tenant_table).put(tenant)
    winners: list[str] = []
    start = threading.Barrier(20)

    def process(owner: str) -> None:
        registry = DynamoTenantRegistry(stack.aws.client("dynamodb"), tenant_table)
        start.wait()
        if registry.take_refresh_lease(tenant.company_id, owner, NOW, NOW + 30) is not None:
            winners.append(owner)

    threads = [threading.Thread(target=process, args=(f"p{n}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_the_operator_writes(stack: Stack, tenant_table: str) -> None:
    registry = DynamoTenantRegistry(stack.app.app.dynamodb, tenant_table)
    tenant = Tenant(str(uuid.uuid4()), "active", ApiKeyCredential("arn:s"), 120)
    registry.put(tenant)
    registry.set_status(tenant.company_id, "disabled")
    assert registry.get(tenant.company_id).status == "disabled"
    assert tenant.company_id in {t.company_id for t in registry.scan()}
    with pytest.raises(UnknownTenant):
        registry.set_status(str(uuid.uuid4()), "active")
    with pytest.raises(UnknownTenant):
        registry.set_credential(str(uuid.uuid4()), ApiKeyCredential("arn:s"))


def test_a_record_onboarding_wrote_by_hand(stack: Stack, tenant_table: str) -> None:
    """The design's format exactly, as an integration's onboarding writes it: tokens as
    strings, no version, no lease."""
    company = str(uuid.uuid4())
    dynamodb = stack.aws.client("dynamodb")
    dynamodb.put_item(
        TableName=tenant_table,
        Item={
            "companyId": {"S": company},
            "status": {"S": "active"},
            "maxRequestsPerMinute": {"N": "300"},
            "credential": {
                "M": {
                    "kind": {"S": "oauth"},
                    "refreshToken": {"S": "r-token"},
                    "accessToken": {"S": "a-token"},
                    "expiresAt": {"N": "1800000600"},
                }
            },
        },
    )
    tenant = DynamoTenantRegistry(dynamodb, tenant_table).get(company)
    assert tenant == Tenant(
        company,
        "active",
        OAuthCredential(StoredToken(plain="r-token"), StoredToken(plain="a-token"), 1800000600),
        max_requests_per_minute=300,
    )


def test_sealed_tokens_open_only_for_their_company_and_field(stack: Stack) -> None:
    kms = stack.aws.client("kms")
    cipher = KmsTokenCipher(kms, tenant_key(stack))
    company, other = str(uuid.uuid4()), str(uuid.uuid4())
    sealed = cipher.seal(company, "refreshToken", "the-refresh-token")
    assert b"the-refresh-token" not in sealed
    assert cipher.open(company, "refreshToken", StoredToken(sealed=sealed)) == "the-refresh-token"
    wrong: list[tuple[str, TokenField]] = [(other, "refreshToken"), (company, "accessToken")]
    for wrong_company, wrong_field in wrong:
        with pytest.raises(InvalidTenantRecord, match="does not open") as refused:
            cipher.open(wrong_company, wrong_field, StoredToken(sealed=sealed))
        assert "the-refresh-token" not in str(refused.value)
    # A plain token (what onboarding may write) is used as it is, without KMS.
    calls = cipher.calls
    assert cipher.open(company, "accessToken", StoredToken(plain="plain")) == "plain"
    assert cipher.calls == calls
    other_key = kms.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises((InvalidTenantRecord, ConfigurationError)):
        KmsTokenCipher(kms, other_key).open(company, "refreshToken", StoredToken(sealed=sealed))
