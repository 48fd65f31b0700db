"""Pleo's OAuth token endpoint over HTTP (pleo-api.md, "OAuth for partner apps"): the
`TokenEndpoint` port of pleo_scope/oauth.py, and the app's client credentials
(PLEO_OAUTH_CLIENT_SECRET_ARN's `{"clientId", "clientSecret"}`, sent as HTTP Basic).

What each failure means for the grant is the point here:
- Pleo answered 5xx or 429, or the connection was never made: nothing rotated; retried here
  with the same refresh token, then `TokenRefreshUnavailable`.
- The request left but no readable answer came back (read time-out, connection dropped, a
  200 without the tokens): Pleo may have rotated: `AnswerLost`, for the refresher to decide.
- 400 `invalid_grant`: the grant is spent or revoked: `InvalidGrant`.
- 401 `invalid_client`: the app's credentials; the secret is read again once (it may have been
  rotated), then `OAuthClientRejected`. The grant is untouched.
No token, client secret or response body is ever logged or put in an error.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol, TypeGuard

import httpx

from pleo_scope.clock import Clock, SystemClock
from pleo_scope.errors import InvalidSecret, OAuthClientRejected, TokenRefreshUnavailable
from pleo_scope.oauth import AnswerLost, InvalidGrant, RefreshedTokens
from pleo_scope.secret_fields import header_field, secret_document
from pleo_scope.tls import shared_tls_context

logger = logging.getLogger(__name__)

USER_AGENT = "pleo-export-scope/0.1"
FALLBACK_EXPIRES_IN = 60
"""Seconds assumed when an answer's `expires_in` is missing or not a positive integer: the
tokens in it are the grant's only live ones, so they are kept and refreshed early."""
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)

    def authorization_header(self) -> str:
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


class ClientCredentialSource(Protocol):
    def get(self, *, force_fetch: bool = False) -> ClientCredentials:
        """The app's client credentials; `force_fetch` bypasses any cache."""
        ...


@dataclass(slots=True)
class StaticClientCredentials:
    credentials: ClientCredentials

    def get(self, *, force_fetch: bool = False) -> ClientCredentials:
        return self.credentials


def parse_client_secret(secret_string: str, secret_name: str) -> ClientCredentials:
    """`{"clientId": "...", "clientSecret": "..."}`, each printable ASCII (surrounding
    whitespace stripped); anything else names the secret, never a value."""
    document = secret_document(secret_string, secret_name)
    client_id, client_secret = (
        header_field(document, name, secret_name) for name in ("clientId", "clientSecret")
    )
    if ":" in client_id:  # HTTP Basic's user name ends at the first colon
        raise InvalidSecret(
            f"secret {secret_name}: `clientId` holds a colon, which HTTP Basic cannot carry"
        )
    return ClientCredentials(client_id, client_secret)


@dataclass(frozen=True, slots=True)
class TokenEndpointSettings:
    url: str
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    attempts: int = 2
    """Attempts for answers that prove nothing rotated (5xx, 429, no connection)."""
    backoff_seconds: float = 0.5


class HttpTokenEndpoint:
    def __init__(
        self,
        settings: TokenEndpointSettings,
        credentials: ClientCredentialSource,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(
                settings.read_timeout, connect=settings.connect_timeout, pool=settings.read_timeout
            ),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            verify=shared_tls_context(),
            follow_redirects=False,
            transport=transport,
        )
        self.calls = 0

    @property
    def worst_case_seconds(self) -> float:
        s = self._settings
        backoff = sum(s.backoff_seconds * 2.0**n for n in range(s.attempts - 1))
        # A 401 re-reads the client secret and tries once more.
        return (s.attempts + 1) * (s.connect_timeout + s.read_timeout) + backoff

    def close(self) -> None:
        self._http.close()

    def refresh(self, refresh_token: str) -> RefreshedTokens:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        credentials = self._credentials.get()
        reread_secret = False
        attempt = 0
        while True:
            attempt += 1
            response = self._post(form, credentials, attempt)
            if response is None or response.status_code == 429 or response.status_code >= 500:
                if attempt >= self._settings.attempts:
                    what = "no connection" if response is None else f"HTTP {response.status_code}"
                    raise TokenRefreshUnavailable(
                        f"Pleo's token endpoint failed ({what}) {attempt} times before"
                        " rotating; the grant is untouched"
                    )
                self._clock.sleep(self._settings.backoff_seconds * 2 ** (attempt - 1))
                continue
            if response.status_code == 200:
                return _tokens(response)
            code = _error_code(response)
            if code == "invalid_grant":
                raise InvalidGrant(code)
            if (response.status_code == 401 or code == "invalid_client") and not reread_secret:
                reread_secret = True  # the app's secret may have been rotated since it was read
                credentials = self._credentials.get(force_fetch=True)
                continue
            raise OAuthClientRejected(
                f"Pleo's token endpoint refused the app's request (HTTP"
                f" {response.status_code}, {code or 'no OAuth error code'}): check"
                " PLEO_OAUTH_CLIENT_SECRET_ARN and PLEO_OAUTH_TOKEN_URL; the grant is untouched"
            )

    def _post(
        self, form: dict[str, str], credentials: ClientCredentials, attempt: int
    ) -> httpx.Response | None:
        """The answer; None when the connection was never made (nothing reached Pleo)."""
        self.calls += 1
        try:
            return self._http.post(
                self._settings.url,
                data=form,
                headers={"Authorization": credentials.authorization_header()},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            logger.warning(
                "token endpoint unreachable",
                extra={"error": type(error).__name__, "attempt": attempt},
            )
            return None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
            raise OAuthClientRejected(
                f"cannot send the token request ({type(error).__name__}): check"
                " PLEO_OAUTH_TOKEN_URL and PLEO_OAUTH_CLIENT_SECRET_ARN"
            ) from None
        except httpx.TransportError as error:  # sent, and then the answer was lost
            logger.warning("token endpoint answer lost", extra={"error": type(error).__name__})
            raise AnswerLost(type(error).__name__) from None


def _tokens(response: httpx.Response) -> RefreshedTokens:
    """Pleo rotated: the tokens, or `AnswerLost` if they cannot be read (they are lost)."""
    try:
        document = response.json()
    except ValueError:
        raise AnswerLost("a 200 that is not JSON") from None
    if not isinstance(document, dict):
        raise AnswerLost("a 200 that is not a JSON object")
    access, refresh = document.get("access_token"), document.get("refresh_token")
    if not (_printable_token(access) and _printable_token(refresh)):
        raise AnswerLost("a 200 without both tokens")
    expires_in = document.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        logger.warning("token endpoint answered no usable expires_in; assuming a short one")
        expires_in = FALLBACK_EXPIRES_IN
    return RefreshedTokens(access, refresh, expires_in)


def _printable_token(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value) and all(" " < char <= "~" for char in value)


def _error_code(response: httpx.Response) -> str | None:
    """OAuth's `error` code, when it is one (never the description: it may echo input)."""
    try:
        document = response.json()
    except ValueError:
        return None
    code = document.get("error") if isinstance(document, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else None
