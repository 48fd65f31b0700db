"""A managed-OAuth tenant's credential for HTTP clients, through the refresher
(pleo_scope/oauth.py): as an `httpx.Auth` (any httpx client: the walk's seam, a consumer's
client) and as a `CredentialSource` (the Pleo client's re-read on a 401).

Either way a request goes out with the tenant's current token (refreshed ahead of expiry by
the refresher); a 401 refreshes past exactly the version that request carried, so that fifty
requests rejected at one expiry cost one refresh, not fifty, and the request is sent once
more with the new token. A second 401 is returned to the caller as it is."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Generator

import httpx

from pleo_scope.credentials import Credential
from pleo_scope.oauth import OAuthRefresher


class OAuthAuth(httpx.Auth):
    """For synchronous httpx clients (the refresher blocks on DynamoDB, KMS and Pleo)."""

    def __init__(self, refresher: OAuthRefresher, company_id: str) -> None:
        self._refresher = refresher
        self.company_id = company_id

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        grant = self._refresher.access_token(self.company_id)
        request.headers["Authorization"] = grant.authorization_header()
        response = yield request
        if response.status_code != 401:
            return
        renewed = self._refresher.access_token(self.company_id, rejected=grant.version)
        if renewed.token == grant.token:
            return  # the same token, refused: re-sending it would be refused too
        request.headers["Authorization"] = renewed.authorization_header()
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        raise RuntimeError("OAuthAuth blocks on the registry: use it with httpx.Client")
        yield request


class OAuthCredentialSource:
    """The `CredentialSource` the Pleo client asks: `get()` the current token, and after a
    401 `get(force_fetch=True)` one past the version the failing request carried (each
    thread's last one: the client's threads each send, then re-read, on their own)."""

    def __init__(self, refresher: OAuthRefresher, company_id: str) -> None:
        self._refresher = refresher
        self.company_id = company_id
        self._last = threading.local()

    def get(self, *, force_fetch: bool = False) -> Credential:
        rejected: int | None = getattr(self._last, "version", None) if force_fetch else None
        grant = self._refresher.access_token(self.company_id, rejected=rejected)
        self._last.version = grant.version
        return Credential("accessToken", grant.token)
