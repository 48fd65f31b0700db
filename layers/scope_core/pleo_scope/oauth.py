"""Managed OAuth (DESIGN.md "Tenants", pleo-api.md "OAuth for partner apps"): a tenant's access
token, refreshed ahead of expiry or when Pleo rejected it, with one refresh in flight per
tenant across the whole fleet.

Pleo rotates both tokens on every refresh and revokes the whole grant when a spent refresh
token is presented again. So, per tenant:
- a fresh token (not near its expiry, not the one a 401 named) is used as it is;
- otherwise one process takes the registry's refresh lease; the record the lease write
  returns is its re-read: if someone else refreshed meanwhile, it uses their token;
- the holder calls the token endpoint and stores both new tokens in one write on the version
  it read; `invalid_grant` sets the tenant `relink_needed` (on that version), reports it
  (`RelinkReports`: the relink alarm's metric, from whichever process saw the refusal) and
  raises `RelinkNeeded`;
- an answer lost after the request left (Pleo may have rotated) is retried once with the same
  refresh token: if Pleo had rotated, that retry is a reuse, refused with `invalid_grant`, so
  the grant ends in relink_needed, never in a loop;
- the others poll the registry with back-off and never call the endpoint; one takes the lease
  over only once it has run out. The lease outlasts the holder's worst case (two endpoint
  calls at their time-outs), so a live holder never loses it.

Knows the registry, the cipher, the endpoint and the reports as ports only (pleo_scope.tenants,
below).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from pleo_scope.clock import Clock, SystemClock
from pleo_scope.errors import RelinkNeeded, TokenRefreshInProgress, TokenRefreshUnavailable
from pleo_scope.tenants import FreshTokens, Tenant, TenantRegistry, TokenCipher

logger = logging.getLogger(__name__)

STORE_ATTEMPTS = 3
STORE_BACKOFF_SECONDS = 0.5


# -- the token endpoint's port ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshedTokens:
    """The endpoint's answer to one refresh: both new tokens (the old ones no longer work)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int


class InvalidGrant(Exception):
    """400 `invalid_grant`: the refresh token is spent, expired or revoked (the grant is gone)."""


class AnswerLost(Exception):
    """The request may have reached Pleo, which may have rotated, but no answer came back."""


class TokenEndpoint(Protocol):
    @property
    def worst_case_seconds(self) -> float:
        """The longest one `refresh` call can take before it returns or raises."""
        ...

    def refresh(self, refresh_token: str) -> RefreshedTokens:
        """Raises `InvalidGrant`, `AnswerLost`, `OAuthClientRejected` (the app's client
        credentials or request: the grant is untouched) or `TokenRefreshUnavailable` (Pleo
        answered a 5xx or 429, or the request never left: the grant is untouched)."""
        ...


# -- what the refresher reports -----------------------------------------------------------------


class RelinkReports(Protocol):
    """Where the refresher reports that it set a tenant `relink_needed` (the relink alarm's
    metric): whichever process saw Pleo refuse the grant, a walk's or a consumer's. Only the
    company, never a token."""

    def relink_needed(self, company_id: str) -> None: ...


class NoRelinkReports:
    def relink_needed(self, company_id: str) -> None:
        pass


# -- what the refresher hands out -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """An access token to send, and the registry version it came from: after a 401, that
    version is the `rejected` one to refresh past."""

    company_id: str
    token: str = field(repr=False)
    version: int
    expires_at: float | None
    """Epoch seconds (None: the record did not say; used until Pleo rejects it)."""
    refresh_at: float | None = None
    """Epoch seconds from which it is refreshed ahead of its expiry."""

    def authorization_header(self) -> str:
        return f"Bearer {self.token}"


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    refresh_ahead_seconds: float = 60.0
    """Refresh when the token has less than this left..."""
    refresh_ahead_fraction: float = 0.2
    """...or less than this fraction of its lifetime, whichever is shorter (a 30 s token is
    refreshed 6 s ahead, not always)."""
    lease_margin_seconds: float = 5.0
    """Beyond the endpoint's two worst-case calls: the KMS and DynamoDB calls around them
    (a store retried after a failure included: its write is conditional on the version, so
    it is right even past the lease)."""
    wait_seconds: float | None = None
    """How long a process waits for another's refresh before `TokenRefreshInProgress`; None:
    one lease and a margin, so that a waiter outlives a dead holder and takes over."""
    poll_first_seconds: float = 0.05
    poll_max_seconds: float = 1.0


class OAuthRefresher:
    """One per process (it caches each tenant's current access token); thread-safe."""

    def __init__(
        self,
        registry: TenantRegistry,
        cipher: TokenCipher,
        endpoint: TokenEndpoint,
        *,
        settings: RefreshSettings | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        reports: RelinkReports | None = None,
    ) -> None:
        self._registry = registry
        self._reports = reports or NoRelinkReports()
        self._cipher = cipher
        self._endpoint = endpoint
        self._settings = settings = settings or RefreshSettings()
        self._clock = clock or SystemClock()
        self.owner = owner or f"refresher-{uuid.uuid4()}"
        self.lease_seconds = 2 * endpoint.worst_case_seconds + settings.lease_margin_seconds
        self._wait_seconds = (
            settings.wait_seconds
            if settings.wait_seconds is not None
            else self.lease_seconds + settings.lease_margin_seconds
        )
        self._cache: dict[str, AccessGrant] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.refreshes = 0
        """Token endpoint calls this process made (the lost answer's retry included)."""

    def access_token(self, company_id: str, rejected: int | None = None) -> AccessGrant:
        """The tenant's access token to send now. `rejected`: the version of a token Pleo
        answered 401 to; a token of that version is never returned."""
        cached = self._cache.get(company_id)
        if cached is not None and self._usable(cached.version, cached.refresh_at, rejected):
            return cached
        # One thread per process goes to the registry; the others find its result cached.
        with self._lock_of(company_id):
            cached = self._cache.get(company_id)
            if cached is not None and self._usable(cached.version, cached.refresh_at, rejected):
                return cached
            try:
                grant = self._through_registry(company_id, rejected)
            except RelinkNeeded:
                # The cached token is the refused grant's: once a new grant is stored, the
                # next call must not send it (a 401 for nothing).
                self._cache.pop(company_id, None)
                raise
            self._cache[company_id] = grant
            return grant

    def forget(self, company_id: str) -> None:
        self._cache.pop(company_id, None)

    # -- the protocol -----------------------------------------------------------------------

    def _through_registry(self, company_id: str, rejected: int | None) -> AccessGrant:
        started = self._clock.monotonic()
        delay = self._settings.poll_first_seconds
        tenant = self._registry.get(company_id)
        while True:
            tenant.require_active()
            grant = self._open_if_usable(tenant, rejected)
            if grant is not None:
                return grant
            now = self._epoch()
            lease = tenant.refresh_lease_expires_at
            if lease is None or lease < now:
                held = self._registry.take_refresh_lease(
                    company_id, self.owner, now, now + self.lease_seconds
                )
                if held is not None:
                    grant = self._refresh_holding(held, rejected, now + self.lease_seconds)
                    if grant is not None:
                        return grant
                    delay = self._settings.poll_first_seconds
            waited = self._clock.monotonic() - started
            if waited >= self._wait_seconds:
                raise TokenRefreshInProgress(
                    f"company {company_id}: another process's token refresh outlasted this"
                    f" one's wait ({self._wait_seconds:.0f}s)"
                )
            self._clock.sleep(min(delay, self._wait_seconds - waited))
            delay = min(delay * 2, self._settings.poll_max_seconds)
            tenant = self._registry.get(company_id)

    def _refresh_holding(
        self, held: Tenant, rejected: int | None, lease_until: float
    ) -> AccessGrant | None:
        """With the lease: the new token, or None when the record moved under the lease (a
        new grant stored, say): the caller reads it again."""
        company_id = held.company_id
        released = False
        try:
            held.require_active()
            grant = self._open_if_usable(held, rejected)
            if grant is not None:  # refreshed by another between our read and our lease
                return grant
            if self._epoch() + 2 * self._endpoint.worst_case_seconds > lease_until:
                return None  # too little lease left for the calls (a slow KMS, say)
            credential = held.oauth()
            refresh_token = self._cipher.open(company_id, "refreshToken", credential.refresh_token)
            before_call = self._epoch()
            try:
                answer = self._call_endpoint(company_id, refresh_token)
            except InvalidGrant:
                if self._registry.mark_relink_needed(company_id, held.version):
                    released = True  # the same write dropped the lease
                    logger.warning(
                        "OAuth grant refused by Pleo (invalid_grant); tenant set relink_needed",
                        extra={"companyId": company_id, "version": held.version},
                    )
                    self._report_relink(company_id)
                    raise RelinkNeeded(
                        f"company {company_id}: Pleo refused the OAuth grant (invalid_grant);"
                        " the company must install the app again, then re-send the trigger"
                    ) from None
                return None  # a new grant was stored meanwhile: read it
            fresh = FreshTokens(
                refresh_token=self._cipher.seal(company_id, "refreshToken", answer.refresh_token),
                access_token=self._cipher.seal(company_id, "accessToken", answer.access_token),
                # Not cut to whole seconds: that would cut up to 1 s off a 1 s token's life.
                expires_at=before_call + answer.expires_in,
                lifetime=answer.expires_in,
            )
            stored = self._store(company_id, held.version, fresh)
            if stored is None:
                logger.warning(
                    "tenant record moved during a token refresh; the refreshed tokens are"
                    " dropped and the record read again",
                    extra={"companyId": company_id, "version": held.version},
                )
                return None
            released = True
            logger.info(
                "OAuth tokens refreshed",
                extra={"companyId": company_id, "version": stored.version},
            )
            return AccessGrant(
                company_id,
                answer.access_token,
                stored.version,
                fresh.expires_at,
                self._refresh_at(fresh.expires_at, fresh.lifetime),
            )
        finally:
            if not released:
                self._registry.release_refresh_lease(company_id, self.owner)

    def _report_relink(self, company_id: str) -> None:
        """Once per refused grant: the conditional write above has one winner fleet-wide."""
        try:
            self._reports.relink_needed(company_id)
        except Exception as error:  # the walk's typed error matters more than the metric
            logger.warning(
                "could not report the tenant's relink_needed metric",
                extra={"companyId": company_id, "error": type(error).__name__},
            )

    def _store(self, company_id: str, version: int, fresh: FreshTokens) -> Tenant | None:
        """Pleo has rotated: these are the grant's only live tokens, and a refresh token not
        stored is a reuse next time (the grant revoked). So a failed write (beyond the AWS
        client's own retries) is tried again a few times before giving up."""
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return self._registry.store_tokens(company_id, version, fresh)
            except Exception as error:
                if attempt == STORE_ATTEMPTS:
                    logger.error(
                        "refreshed OAuth tokens could not be stored; the grant's next refresh"
                        " will be refused (relink_needed)",
                        extra={"companyId": company_id, "error": type(error).__name__},
                    )
                    raise
                logger.warning(
                    "storing refreshed OAuth tokens failed; trying again",
                    extra={"companyId": company_id, "error": type(error).__name__},
                )
                self._clock.sleep(STORE_BACKOFF_SECONDS * attempt)
        raise AssertionError("unreachable")

    def _call_endpoint(self, company_id: str, refresh_token: str) -> RefreshedTokens:
        self.refreshes += 1
        try:
            return self._endpoint.refresh(refresh_token)
        except AnswerLost:
            # Pleo may have rotated; only the same refresh token can tell: if it did, this is
            # a reuse and ends in invalid_grant (relink_needed), if not, it refreshes.
            logger.warning(
                "token refresh answer lost; retrying once with the same refresh token",
                extra={"companyId": company_id},
            )
        self.refreshes += 1
        try:
            return self._endpoint.refresh(refresh_token)
        except AnswerLost:
            raise TokenRefreshUnavailable(
                f"company {company_id}: the token endpoint's answer was lost twice; the next"
                " attempt refreshes (or finds the grant refused)"
            ) from None

    # -- freshness ----------------------------------------------------------------------------

    def _open_if_usable(self, tenant: Tenant, rejected: int | None) -> AccessGrant | None:
        credential = tenant.oauth()
        if credential.access_token is None:
            return None  # a record onboarding wrote with the refresh token only
        refresh_at = self._refresh_at(credential.expires_at, tenant.access_token_lifetime)
        if not self._usable(tenant.version, refresh_at, rejected):
            return None
        token = self._cipher.open(tenant.company_id, "accessToken", credential.access_token)
        return AccessGrant(
            tenant.company_id, token, tenant.version, credential.expires_at, refresh_at
        )

    def _refresh_at(self, expires_at: float | None, lifetime: float | None) -> float | None:
        if expires_at is None:
            return None
        ahead = self._settings.refresh_ahead_seconds
        if lifetime is not None:
            ahead = min(ahead, lifetime * self._settings.refresh_ahead_fraction)
        return expires_at - ahead

    def _usable(self, version: int, refresh_at: float | None, rejected: int | None) -> bool:
        if version == rejected:
            return False
        return refresh_at is None or self._epoch() < refresh_at

    def _epoch(self) -> float:
        return self._clock.now().timestamp()

    def _lock_of(self, company_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(company_id, threading.Lock())
