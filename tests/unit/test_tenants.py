"""The tenant model and the registry's record format (DESIGN.md "Registry record"): what reads,
what is refused with a typed error naming the company and attribute (never a token), and the
tenant errors' families (tests/unit/test_final_errors_in_asl.py holds the state machine's
final list to every final error, these included)."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_scope import errors
from pleo_scope.aws.tenants import item_from_tenant, tenant_from_item
from pleo_scope.errors import (
    ConfigurationError,
    InvalidTenantRecord,
    JobRejected,
    RelinkNeeded,
    TenantDisabled,
    TokenRefreshInProgress,
    TokenRefreshUnavailable,
    TransientPleoError,
)
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    FreshTokens,
    OAuthCredential,
    StoredToken,
    Tenant,
    normalise_company_id,
)

COMPANY = "5c1e0a3e-7d7b-4b8e-9a0e-3f2d1c0b9a87"
SECRET = "tok-SECRETCANARY-1"


def oauth_item(**credential: Any) -> dict[str, Any]:
    fields = {"kind": {"S": "oauth"}, "refreshToken": {"S": SECRET}, **credential}
    return {"companyId": {"S": COMPANY}, "status": {"S": "active"}, "credential": {"M": fields}}


def test_the_three_credential_kinds_round_trip() -> None:
    for credential in (
        ApiKeyCredential("arn:aws:secretsmanager:eu-west-1:1:secret:pleo/a"),
        AccessTokenCredential("arn:aws:secretsmanager:eu-west-1:1:secret:pleo/b"),
        OAuthCredential(StoredToken(sealed=b"\x01r"), StoredToken(sealed=b"\x02a"), 1_800_000_000),
        OAuthCredential(StoredToken(plain=SECRET)),
    ):
        tenant = Tenant(COMPANY, "active", credential, max_requests_per_minute=250)
        assert tenant_from_item(dict(item_from_tenant(tenant))) == tenant


def test_our_own_attributes_beside_the_design_fields() -> None:
    item = oauth_item(accessToken={"B": b"sealed"}, expiresAt={"N": "1800000600"})
    item |= {
        "version": {"N": "7"},
        "refreshLeaseOwner": {"S": "lambda-1"},
        "refreshLeaseExpiresAt": {"N": "1800000030.5"},
        "accessTokenLifetime": {"N": "600"},
    }
    tenant = tenant_from_item(item)
    assert (tenant.version, tenant.refresh_lease_expires_at) == (7, 1800000030.5)
    assert tenant.access_token_lifetime == 600
    assert tenant.oauth().access_token == StoredToken(sealed=b"sealed")
    # A lease time without an owner is what a release leaves behind in no case: no lease.
    del item["refreshLeaseOwner"]
    assert tenant_from_item(item).refresh_lease_expires_at is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"companyId": {"S": "not-a-uuid"}}, "is not a UUID"),
        ({"status": {"S": "paused"}}, "status 'paused' is not one of"),
        ({"status": {"N": "1"}}, "status must be a string"),
        ({"credential": {"S": "oauth"}}, "`credential` must be a map"),
        ({"maxRequestsPerMinute": {"N": "0"}}, "maxRequestsPerMinute must be a positive"),
        ({"maxRequestsPerMinute": {"N": "12.5"}}, "maxRequestsPerMinute must be a positive"),
        ({"maxRequestsPerMinute": {"S": "100"}}, "maxRequestsPerMinute must be a number"),
    ],
)
def test_a_record_out_of_format_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTenantRecord, match=message):
        tenant_from_item(oauth_item() | change)


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({"kind": {"S": "password"}}, "credential.kind 'password' is not apiKey"),
        ({"kind": {"S": "apiKey"}}, "credential.secretArn must be a string"),
        ({"refreshToken": {"NULL": True}}, "credential.refreshToken is missing"),
        ({"refreshToken": {"S": "  "}}, "credential.refreshToken must be a non-empty"),
        ({"accessToken": {"N": "1"}}, "credential.accessToken must be a non-empty"),
        ({"expiresAt": {"S": "soon"}}, "credential.expiresAt must be a number"),
    ],
)
def test_a_credential_out_of_format_names_the_field_never_a_token(
    credential: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidTenantRecord, match=message) as refused:
        tenant_from_item(oauth_item(**credential))
    assert COMPANY in str(refused.value)
    assert SECRET not in str(refused.value)


def test_company_ids_are_uuids_in_lower_case() -> None:
    assert normalise_company_id(f" {COMPANY.upper()} ") == COMPANY
    with pytest.raises(InvalidTenantRecord):
        normalise_company_id(42)


def test_no_token_in_a_repr() -> None:
    credential = OAuthCredential(StoredToken(plain=SECRET), StoredToken(sealed=SECRET.encode()))
    shown = repr(Tenant(COMPANY, "active", credential))
    shown += repr(FreshTokens(SECRET.encode(), SECRET.encode(), 1, 1))
    assert "SECRETCANARY" not in shown
    with pytest.raises(ValueError, match="either sealed or plain"):
        StoredToken()


def test_only_an_active_tenant_walks() -> None:
    tenant = Tenant(COMPANY, "active", ApiKeyCredential("arn:s"))
    tenant.require_active()
    with pytest.raises(TenantDisabled, match=COMPANY):
        Tenant(COMPANY, "disabled", tenant.credential).require_active()
    with pytest.raises(RelinkNeeded, match="install the app again"):
        Tenant(COMPANY, "relink_needed", tenant.credential).require_active()
    with pytest.raises(InvalidTenantRecord, match="not 'oauth'"):
        tenant.oauth()


def test_the_tenant_errors_families() -> None:
    assert issubclass(errors.TenantMismatch, JobRejected)
    for name in ("UnknownTenant", "TenantDisabled", "RelinkNeeded", "OAuthClientRejected"):
        assert issubclass(getattr(errors, name), ConfigurationError)
    # Retried by the state machine: nothing about the grant is known to be wrong.
    assert issubclass(TokenRefreshUnavailable, TransientPleoError)
    assert issubclass(TokenRefreshInProgress, TransientPleoError)
