"""Pleo's OAuth token endpoint for partner apps (pleo-api.md, "OAuth for partner apps").

`POST /oauth/token` with the app's client id and secret as HTTP Basic and the form
`grant_type=refresh_token&refresh_token=...`. Rules, as Pleo states them:
- every refresh rotates both tokens, and the previous ones stop working at once;
- presenting a refresh token that was already used revokes the whole grant;
- errors are OAuth's: 400 `invalid_grant` (spent, expired, revoked or unknown refresh token),
  401 `invalid_client` (bad client credentials).
Faults on demand: an answer lost after the rotation happened (the client never learns the
new tokens), a status before rotating (5xx), latency.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

from tooling.pleo_sim.companies import READ_SCOPE

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"  # noqa: S105 - the simulator's own app
DEFAULT_ACCESS_LIFETIME = 900.0
"""Seconds; Pleo's access tokens last minutes."""
DEFAULT_REFRESH_LIFETIME = 60 * 86_400.0
"""Seconds; Pleo's refresh tokens last at least 60 days."""

TokenFaultKind = Literal[
    "lose_answer",  # rotate, then close the connection unanswered: the new tokens are lost
    "status",  # answer `status` without rotating (a 5xx before Pleo did anything)
    "latency",  # answer normally after `seconds`
]
TokenOutcome = Literal[
    "rotated", "lost", "reused", "invalid_grant", "invalid_client", "invalid_request", "fault"
]


@dataclass
class TokenFault:
    kind: TokenFaultKind
    times: int | None = 1
    """Fire on the next `times` token requests (None: every one)."""
    status: int = 503
    seconds: float = 0.0


@dataclass
class Grant:
    """One company's installation of one app: the current pair of tokens and every refresh
    token it spent (presenting one again revokes the grant)."""

    company_id: str
    client_id: str
    scopes: frozenset[str]
    access_lifetime: float
    refresh_lifetime: float
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: float
    refresh_expires_at: float
    access_issued_at: float
    access_presented: bool = False
    """The current access token reached the API (an installation's first may never)."""
    spent: set[str] = field(default_factory=set, repr=False)
    revoked: bool = False
    rotations: int = 0

    @property
    def alive(self) -> bool:
        return not self.revoked


@dataclass(frozen=True)
class IssuedTokens:
    """What an installation (authorization code + PKCE, outside this project) hands over."""

    company_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class TokenCall:
    number: int
    outcome: TokenOutcome
    company_id: str | None
    replaced_life_used: float | None = None
    """A rotation: the share of its lifetime the access token it replaced had served (None:
    that token never reached the API). Refreshed ahead of expiry, it is near 1."""


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    document: dict[str, object] | None
    """None: no answer at all (the connection is closed)."""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class OAuthServer:
    """Grants, clients and the token endpoint. Not thread-safe on its own: the simulator
    calls it under its lock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clients: dict[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        """Client id -> client secret of every registered app."""
        self.grants: list[Grant] = []
        self.calls: list[TokenCall] = []
        self.faults: list[TokenFault] = []
        self._clock = clock
        self._by_refresh: dict[str, Grant] = {}
        """Every refresh token ever issued (current and spent) -> its grant."""
        self._by_access: dict[str, Grant] = {}

    # -- control --------------------------------------------------------------------------

    def grant(
        self,
        company_id: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        scopes: frozenset[str] = frozenset({READ_SCOPE}),
        access_lifetime: float = DEFAULT_ACCESS_LIFETIME,
        refresh_lifetime: float = DEFAULT_REFRESH_LIFETIME,
    ) -> IssuedTokens:
        now = self._clock()
        grant = Grant(
            company_id=company_id,
            client_id=client_id,
            scopes=scopes,
            access_lifetime=access_lifetime,
            refresh_lifetime=refresh_lifetime,
            access_token=_token("at"),
            refresh_token=_token("rt"),
            access_expires_at=now + access_lifetime,
            refresh_expires_at=now + refresh_lifetime,
            access_issued_at=now,
        )
        self.grants.append(grant)
        self._by_refresh[grant.refresh_token] = grant
        self._by_access[grant.access_token] = grant
        return IssuedTokens(company_id, grant.access_token, grant.refresh_token, access_lifetime)

    def grant_of(self, refresh_or_access_token: str) -> Grant | None:
        token = refresh_or_access_token
        return self._by_refresh.get(token) or self._by_access.get(token)

    def revoke_company(self, company_id: str) -> None:
        for grant in self.grants:
            if grant.company_id == company_id:
                grant.revoked = True

    def expire_access_tokens(self, company_id: str | None = None) -> None:
        """Make the current access tokens (of one company, or all) expired now."""
        now = self._clock()
        for grant in self.grants:
            if company_id in (None, grant.company_id):
                grant.access_expires_at = min(grant.access_expires_at, now)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def lives_used(self, company_id: str) -> list[float]:
        """Per rotation of the company's grant whose replaced token was used: the share of
        its lifetime that token served (refreshes only at expiry: each near 1)."""
        return [
            call.replaced_life_used
            for call in self.calls
            if call.company_id == company_id and call.replaced_life_used is not None
        ]

    def call_count_for(self, company_id: str, outcome: TokenOutcome | None = None) -> int:
        return sum(
            1
            for call in self.calls
            if call.company_id == company_id and outcome in (None, call.outcome)
        )

    # -- the API side ---------------------------------------------------------------------

    def authenticate(self, access_token: str) -> tuple[str, frozenset[str]] | None:
        """(company, scopes) of a live, unexpired access token of a grant; else None."""
        grant = self._by_access.get(access_token)
        if grant is None or not grant.alive or grant.access_token != access_token:
            return None
        grant.access_presented = True  # even once expired: it was used up to its end
        if self._clock() >= grant.access_expires_at:
            return None
        return grant.company_id, grant.scopes

    def token_request(self, headers: dict[str, str], body: bytes) -> TokenAnswer:
        number = len(self.calls) + 1
        client_id = self._client(headers.get("authorization", ""))
        if client_id is None:
            self.calls.append(TokenCall(number, "invalid_client", None))
            return TokenAnswer(
                401,
                _error("invalid_client", "client authentication failed"),
                headers={"WWW-Authenticate": 'Basic realm="pleo"'},
            )
        form = {key: values[-1] for key, values in parse_qs(body.decode("latin-1")).items()}
        if form.get("grant_type") != "refresh_token":
            self.calls.append(TokenCall(number, "invalid_request", None))
            return TokenAnswer(400, _error("unsupported_grant_type", "only refresh_token"))
        presented = form.get("refresh_token", "")
        if not presented:
            self.calls.append(TokenCall(number, "invalid_request", None))
            return TokenAnswer(400, _error("invalid_request", "refresh_token is missing"))
        grant = self._by_refresh.get(presented)
        company = grant.company_id if grant else None
        fault = self._next_fault()
        if fault is not None and fault.kind == "status":
            self.calls.append(TokenCall(number, "fault", company))
            return TokenAnswer(fault.status, _error("server_error", "injected"))
        delay = fault.seconds if fault is not None and fault.kind == "latency" else 0.0
        if grant is None or grant.client_id != client_id:
            self.calls.append(TokenCall(number, "invalid_grant", company))
            return TokenAnswer(400, _error("invalid_grant", "unknown refresh token"), delay)
        if presented in grant.spent:
            grant.revoked = True  # reuse of a spent refresh token revokes the whole grant
            self.calls.append(TokenCall(number, "reused", company))
            return TokenAnswer(400, _error("invalid_grant", "refresh token reused"), delay)
        if not grant.alive or self._clock() >= grant.refresh_expires_at:
            self.calls.append(TokenCall(number, "invalid_grant", company))
            return TokenAnswer(400, _error("invalid_grant", "grant revoked or expired"), delay)
        life_used = self._rotate(grant)
        if fault is not None and fault.kind == "lose_answer":
            self.calls.append(TokenCall(number, "lost", company, life_used))
            return TokenAnswer(0, None, delay)
        self.calls.append(TokenCall(number, "rotated", company, life_used))
        document: dict[str, object] = {
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "token_type": "Bearer",
            "expires_in": int(grant.access_lifetime),
            "scope": " ".join(sorted(grant.scopes)),
        }
        return TokenAnswer(200, document, delay, {"Cache-Control": "no-store"})

    def _rotate(self, grant: Grant) -> float | None:
        """Returns the replaced access token's share of its lifetime served, if it was used."""
        now = self._clock()
        life_used = None
        if grant.access_presented:
            life_used = (now - grant.access_issued_at) / grant.access_lifetime
        grant.spent.add(grant.refresh_token)
        del self._by_access[grant.access_token]
        grant.access_token, grant.refresh_token = _token("at"), _token("rt")
        grant.access_expires_at = now + grant.access_lifetime
        grant.refresh_expires_at = now + grant.refresh_lifetime
        grant.access_issued_at, grant.access_presented = now, False
        grant.rotations += 1
        self._by_refresh[grant.refresh_token] = grant
        self._by_access[grant.access_token] = grant
        return life_used

    def _client(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme != "Basic":
            return None
        try:
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, client_secret):
            return None
        return client_id

    def _next_fault(self) -> TokenFault | None:
        for fault in self.faults:
            if fault.times is None or fault.times > 0:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None


def _token(kind: str) -> str:
    return f"sim-{kind}-{secrets.token_urlsafe(24)}"


def _error(code: str, description: str) -> dict[str, object]:
    return {"error": code, "error_description": description}
