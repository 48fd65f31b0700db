"""Tenants (DESIGN.md "Tenants"): one Pleo company, its status and its one credential, as the
registry holds them; and the ports the registry and the token cipher offer.

Tokens are `StoredToken`s: what the registry holds (KMS ciphertext, or the plain text an
onboarding wrote), opened only by the code that sends them. No token has a repr.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pleo_scope.errors import InvalidTenantRecord, RelinkNeeded, TenantDisabled

TenantStatus = Literal["active", "disabled", "relink_needed"]
TENANT_STATUSES: tuple[TenantStatus, ...] = ("active", "disabled", "relink_needed")
TokenField = Literal["refreshToken", "accessToken"]


def normalise_company_id(value: object) -> str:
    """A company id is a UUID in any letter case, used in lower case everywhere."""
    if not isinstance(value, str):
        raise InvalidTenantRecord(f"companyId must be a UUID string, not {type(value).__name__}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidTenantRecord(f"companyId {value[:64]!r} is not a UUID") from None


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as the registry holds it: `sealed` is KMS ciphertext (what this project writes),
    `plain` the text an onboarding may have written (the table's KMS encryption still covers it
    at rest). Exactly one is set."""

    sealed: bytes | None = field(default=None, repr=False)
    plain: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.sealed is None) == (self.plain is None):
            raise ValueError("a stored token is either sealed or plain")


@dataclass(frozen=True, slots=True)
class ApiKeyCredential:
    secret_arn: str
    kind: Literal["apiKey"] = "apiKey"


@dataclass(frozen=True, slots=True)
class AccessTokenCredential:
    """An access token kept fresh by the integration's own token service, re-read on a 401."""

    secret_arn: str
    kind: Literal["accessToken"] = "accessToken"


@dataclass(frozen=True, slots=True)
class OAuthCredential:
    """A grant managed here: refreshed at PLEO_OAUTH_TOKEN_URL (pleo_scope/oauth.py)."""

    refresh_token: StoredToken
    access_token: StoredToken | None = None
    """Absent: refresh before the first request."""
    expires_at: float | None = None
    """Epoch seconds (with their fraction) the access token stops working at."""
    kind: Literal["oauth"] = "oauth"


TenantCredential = ApiKeyCredential | AccessTokenCredential | OAuthCredential


@dataclass(frozen=True, slots=True)
class Tenant:
    company_id: str
    status: TenantStatus
    credential: TenantCredential
    max_requests_per_minute: int | None = None
    version: int = 0
    """Moves on every token write (0: a record only onboarding wrote)."""
    refresh_lease_expires_at: float | None = None
    """Epoch seconds the current refresh lease runs out at; None when nobody holds one."""
    access_token_lifetime: int | None = None
    """`expires_in` of the last refresh: how early to refresh ahead of expiry."""

    def require_active(self) -> None:
        if self.status == "disabled":
            raise TenantDisabled(f"company {self.company_id} is disabled in the tenant registry")
        if self.status == "relink_needed":
            raise RelinkNeeded(
                f"company {self.company_id} needs a new OAuth grant (Pleo refused its refresh"
                " token): the company must install the app again, then re-send the trigger"
            )

    def oauth(self) -> OAuthCredential:
        if not isinstance(self.credential, OAuthCredential):
            raise InvalidTenantRecord(
                f"company {self.company_id}: credential kind is {self.credential.kind!r}, not"
                " 'oauth'"
            )
        return self.credential


@dataclass(frozen=True, slots=True)
class FreshTokens:
    """Both tokens of one refresh, sealed, and when the access token expires."""

    refresh_token: bytes = field(repr=False)
    access_token: bytes = field(repr=False)
    expires_at: float
    lifetime: int


class TenantRegistry(Protocol):
    def get(self, company_id: str) -> Tenant:
        """The record as it stands (a strongly consistent read); `UnknownTenant` if none."""
        ...

    def take_refresh_lease(
        self, company_id: str, owner: str, now: float, until: float
    ) -> Tenant | None:
        """Take the tenant's refresh lease when nobody holds a live one; the record as it
        stands once taken (the holder's re-read, in the same call), or None when held."""
        ...

    def release_refresh_lease(self, company_id: str, owner: str) -> None: ...

    def store_tokens(self, company_id: str, version: int, tokens: FreshTokens) -> Tenant | None:
        """Write both tokens and `version + 1` in one write, conditional on the record still
        being at `version`, releasing the lease; the new record, or None if it moved."""
        ...

    def mark_relink_needed(self, company_id: str, version: int) -> bool:
        """Set `relink_needed` (and drop the lease) unless a newer grant (version) was stored
        meanwhile; False when one was."""
        ...


class TokenCipher(Protocol):
    """Seals and opens tokens with the registry's KMS key, bound to the company and field."""

    def seal(self, company_id: str, name: TokenField, token: str) -> bytes: ...

    def open(self, company_id: str, name: TokenField, stored: StoredToken) -> str: ...
