"""The managed-OAuth credential for HTTP clients (pleo_scope/oauth_auth.py): the request goes
out with the current token, a 401 refreshes past exactly that request's version and re-sends
once, and requests rejected together cost one refresh. The Pleo side is a transport that
accepts only the endpoint fake's current access token."""

from __future__ import annotations

import threading

import httpx
import pytest

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.errors import RelinkNeeded
from pleo_scope.oauth import OAuthRefresher
from pleo_scope.oauth_auth import OAuthAuth, OAuthCredentialSource
from pleo_scope.pleo_client import ClientSettings, PleoClient
from pleo_scope.tenants import OAuthCredential, StoredToken, Tenant
from tests.fakes import MemoryTenantRegistry, PleoTokens, ReversingCipher
from tests.support import FakeClock

COMPANY = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"


class Pleo:
    """Answers 200 to the current access token only, 401 to anything else."""

    def __init__(self, tokens: PleoTokens) -> None:
        self.tokens = tokens
        self.statuses: list[int] = []
        self.together: threading.Barrier | None = None
        """When set, 401s are held until that many were given (answered all at once)."""
        self._lock = threading.Lock()

    def current(self) -> str:
        return f"Bearer at-{self.tokens.rotations}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        status = 200 if request.headers.get("authorization") == self.current() else 401
        with self._lock:
            self.statuses.append(status)
        if status == 401 and self.together is not None:
            self.together.wait()
        if request.url.path.endswith("/items"):
            body = {"data": [], "pagination": {"hasNextPage": False, "endCursor": None}}
            return httpx.Response(status, json=body if status == 200 else {})
        return httpx.Response(status, json={"ok": status == 200})


def setup() -> tuple[OAuthRefresher, PleoTokens, Pleo]:
    registry = MemoryTenantRegistry()
    registry.put(Tenant(COMPANY, "active", OAuthCredential(StoredToken(plain="rt-0"))))
    tokens = PleoTokens()
    refresher = OAuthRefresher(registry, ReversingCipher(), tokens, clock=FakeClock())
    return refresher, tokens, Pleo(tokens)


def test_the_request_carries_the_current_token() -> None:
    refresher, tokens, pleo = setup()
    http = httpx.Client(transport=httpx.MockTransport(pleo), auth=OAuthAuth(refresher, COMPANY))
    assert http.get("http://pleo.test/v3/x").status_code == 200
    assert http.get("http://pleo.test/v3/x").status_code == 200
    assert (pleo.statuses, tokens.calls) == ([200, 200], 1)


def test_a_401_refreshes_past_that_version_and_resends_once() -> None:
    refresher, tokens, pleo = setup()
    http = httpx.Client(transport=httpx.MockTransport(pleo), auth=OAuthAuth(refresher, COMPANY))
    assert http.get("http://pleo.test/v3/x").status_code == 200
    tokens.rotations += 1  # Pleo stops accepting at-1 before the refresher expected it to
    assert http.get("http://pleo.test/v3/x").status_code == 200
    assert pleo.statuses == [200, 401, 200]
    assert tokens.calls == 2
    # A token Pleo keeps refusing after the refresh: the second 401 is the caller's to see.
    pleo.tokens = PleoTokens(rotations=99)
    assert http.get("http://pleo.test/v3/x").status_code == 401
    assert pleo.statuses[-2:] == [401, 401]
    # A grant Pleo refuses: the typed error, not a response.
    tokens.revoked = True
    with pytest.raises(RelinkNeeded):
        http.get("http://pleo.test/v3/x")


def test_requests_rejected_together_cost_one_refresh() -> None:
    """Ten threads' requests all meet a 401 on version 1: one refresh, ten re-sends."""
    refresher, tokens, pleo = setup()
    auth = OAuthAuth(refresher, COMPANY)
    http = httpx.Client(transport=httpx.MockTransport(pleo), auth=auth)
    assert http.get("http://pleo.test/v3/x").status_code == 200
    tokens.rotations += 1  # at-1 no longer accepted
    pleo.together = threading.Barrier(10)
    start = threading.Barrier(10)
    codes: list[int] = []

    def send() -> None:
        start.wait()
        codes.append(http.get("http://pleo.test/v3/x").status_code)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 10
    assert tokens.calls == 2  # the first token, and one refresh for the ten 401s
    assert pleo.statuses.count(401) == 10


def test_async_clients_are_refused() -> None:
    refresher, _, _ = setup()
    auth = OAuthAuth(refresher, COMPANY)
    flow = auth.async_auth_flow(httpx.Request("GET", "http://pleo.test/"))
    with pytest.raises(RuntimeError, match=r"httpx\.Client"):
        flow.__anext__().send(None)


def test_the_pleo_clients_reread_after_a_401_goes_past_the_rejected_version() -> None:
    refresher, tokens, pleo = setup()
    client = PleoClient(
        ClientSettings(base_url="http://pleo.test"),
        CredentialAuth(OAuthCredentialSource(refresher, COMPANY)),
        transport=httpx.MockTransport(pleo),
    )
    budget = Budget.unbounded(FakeClock())
    client.get_items_page(JobRef("job"), None, budget)
    tokens.rotations += 1
    client.get_items_page(JobRef("job"), None, budget)
    assert pleo.statuses == [200, 401, 200]
    assert tokens.calls == 2
