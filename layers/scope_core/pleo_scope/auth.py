"""How a request to Pleo is authorised: one `httpx.Auth` per tenant, handed to the Pleo client.

The seam every kind of credential implements (DESIGN.md, "Tenants"), as a plain httpx.Auth
whose `auth_flow`:

1. sets `Authorization` on the request from the tenant's current credential;
2. on a 401, may renew the credential ONCE (re-read it, refresh it) and re-send the request
   with the new one; it re-sends only when the credential changed, since the same one would
   be refused again;
3. otherwise returns the response as it came: the client maps a 401 that reaches it to
   `CredentialRejected` (final), so a refusal never loops.

Every request the flow sends, a re-sent one included, goes through the client's request hook:
it takes its slot from the tenant's rate budget and is counted. An Auth never logs, raises or
repr()s a credential; errors name where the credential lives (a secret's ARN), not its value.

`CredentialAuth` is the static kinds' (`apiKey`: HTTP Basic; `accessToken`: Bearer): its
credential comes from a `CredentialSource` (Secrets Manager, cached), re-read past the cache
on a 401 (the integration's token service, or an operator, may have rotated it).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from pleo_scope.credentials import Credential, CredentialSource, StaticCredential

__all__ = ["CredentialAuth"]


class CredentialAuth(httpx.Auth):
    """A static credential (`apiKey` or `accessToken`) from its source."""

    def __init__(self, source: CredentialSource) -> None:
        self._source = source

    @classmethod
    def of(cls, credential: Credential) -> CredentialAuth:
        """A credential known up front (tests, tools)."""
        return cls(StaticCredential(credential))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        credential = self._source.get()
        request.headers["Authorization"] = credential.authorization_header()
        response = yield request
        if response.status_code != 401:
            return
        renewed = self._source.get(force_fetch=True)
        if renewed == credential:
            return  # the same credential, refused: re-sending it would be refused too
        request.headers["Authorization"] = renewed.authorization_header()
        yield request
