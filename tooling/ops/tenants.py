"""`pleo-scope-ops tenant ...`: the tenant registry as an operator sees and changes it
(DESIGN.md, "Tenants"). What is shown names a credential by kind and where it lives (a
secret's ARN), never by value: an OAuth grant's tokens are shown as present or absent, with
their expiry and version. A refresh token is given on standard input, never as an argument,
and is sealed with the tenant key before it is written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantCredential,
    TenantStatus,
    TokenCipher,
)
from pleo_scope.tenants_access import require_own_secret


class TenantCommandError(Exception):
    """What an operator asked cannot be done as asked (said in one line)."""


@dataclass(frozen=True)
class TenantView:
    """A tenant as printed: nothing secret in it."""

    company_id: str
    status: TenantStatus
    kind: str
    secret_arn: str | None
    max_requests_per_minute: int | None
    access_token: str | None
    """OAuth: "present" or "absent (refreshed before the first request)"."""
    expires_at: str | None
    version: int
    refresh_lease: str | None

    @classmethod
    def of(cls, tenant: Tenant, now: float) -> TenantView:
        credential = tenant.credential
        secret_arn = getattr(credential, "secret_arn", None)
        access = expires = None
        if isinstance(credential, OAuthCredential):
            access = "present" if credential.access_token is not None else "absent"
            if credential.expires_at is not None:
                expires = _iso(credential.expires_at)
        lease = None
        if tenant.refresh_lease_expires_at is not None:
            held = tenant.refresh_lease_expires_at >= now
            lease = f"{'held until' if held else 'expired'} {_iso(tenant.refresh_lease_expires_at)}"
        return cls(
            tenant.company_id,
            tenant.status,
            credential.kind,
            secret_arn,
            tenant.max_requests_per_minute,
            access,
            expires,
            tenant.version,
            lease,
        )

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "companyId": self.company_id,
            "status": self.status,
            "credential": {"kind": self.kind},
            "maxRequestsPerMinute": self.max_requests_per_minute,
            "version": self.version,
        }
        if self.secret_arn is not None:
            document["credential"]["secretArn"] = self.secret_arn
        if self.kind == "oauth":
            document["credential"].update(accessToken=self.access_token, expiresAt=self.expires_at)
            document["refreshLease"] = self.refresh_lease
        return document

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("company", self.company_id),
            ("status", self.status + _STATUS_HINT.get(self.status, "")),
            ("credential", self.kind),
        ]
        if self.secret_arn is not None:
            rows.append(("secret", self.secret_arn))
        if self.kind == "oauth":
            rows += [
                ("access token", self.access_token or "absent"),
                ("expires", self.expires_at or "-"),
                ("refresh lease", self.refresh_lease or "free"),
            ]
        limit = self.max_requests_per_minute
        rows.append(("requests/min", "deployment default" if limit is None else str(limit)))
        rows.append(("version", str(self.version)))
        return rows


_STATUS_HINT = {
    "disabled": " (its triggers fail with TenantDisabled: `tenant enable` undoes it)",
    "relink_needed": (
        " (Pleo refused its grant: store the new one with `tenant set-credential COMPANY"
        " --oauth`, refresh token on standard input, then re-send its jobs' triggers)"
    ),
}


@dataclass
class TenantAdmin:
    registry: DynamoTenantRegistry
    secret_prefix: str
    cipher: TokenCipher | None = None
    """The tenant key's (KMS): needed only to store an OAuth grant."""

    def add(
        self, company_id: str, credential: TenantCredential, max_requests_per_minute: int | None
    ) -> Tenant:
        tenant = Tenant(company_id, "active", credential, max_requests_per_minute)
        self.registry.put(tenant)  # InvalidTenantRecord when the company is there already
        return self.registry.get(company_id)

    def get(self, company_id: str) -> Tenant:
        return self.registry.get(company_id)

    def every(self) -> Iterator[Tenant]:
        return iter(sorted(self.registry.scan(), key=lambda t: t.company_id))

    def set_status(self, company_id: str, status: TenantStatus) -> Tenant:
        current = self.registry.get(company_id)  # UnknownTenant
        if status == "active" and current.status == "relink_needed":
            raise TenantCommandError(
                f"company {company_id} needs a new OAuth grant, which enabling it cannot give:"
                " store it with `tenant set-credential COMPANY --oauth` (it makes the company"
                " active again)"
            )
        self.registry.set_status(company_id, status)
        return replace(current, status=status)

    def set_credential(self, company_id: str, credential: TenantCredential) -> Tenant:
        self.registry.get(company_id)  # UnknownTenant, before anything is sealed for it
        self.registry.set_credential(company_id, credential)
        return self.registry.get(company_id)

    def secret_credential(
        self, company_id: str, kind: str, secret_arn: str
    ) -> ApiKeyCredential | AccessTokenCredential:
        """An `apiKey` or `accessToken` credential, its secret held to the naming convention
        the function's IAM policy and code enforce (docs/security.md, "Tenants")."""
        require_own_secret(secret_arn, company_id, self.secret_prefix)
        if kind == "apiKey":
            return ApiKeyCredential(secret_arn)
        return AccessTokenCredential(secret_arn)

    def oauth_credential(self, company_id: str, refresh_token: str) -> OAuthCredential:
        """A new grant: its refresh token sealed for this company (no access token yet: the
        function refreshes before its first request)."""
        token = refresh_token.strip()
        if not token:
            raise TenantCommandError("no refresh token on standard input")
        if not all(" " < char <= "~" for char in token):
            raise TenantCommandError(
                "the refresh token on standard input holds characters outside printable ASCII"
                " (a second line, a space?): give the token alone"
            )
        if self.cipher is None:
            raise TenantCommandError(
                "an OAuth grant is sealed with the tenant key: give --stack, --tenant-key or"
                " TENANT_KEY_ARN"
            )
        sealed = self.cipher.seal(company_id, "refreshToken", token)
        return OAuthCredential(StoredToken(sealed=sealed))


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")
