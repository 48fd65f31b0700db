"""The refresh protocol end to end: the simulator's token endpoint (rotation, reuse revokes the
grant, the lost-answer fault) and the registry on moto's DynamoDB and KMS. Fifty processes'
refreshers on one tenant make exactly one token call per expiry and keep the grant alive; a
lost answer ends in relink_needed and a typed error, never a loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pleo_scope.errors import OAuthClientRejected, RelinkNeeded
from pleo_scope.oauth import AccessGrant, OAuthRefresher
from pleo_scope.token_endpoint import ClientCredentials, StaticClientCredentials
from tooling.pleo_sim.oauth import TokenFault
from tooling.testkit.harness import Stack
from tooling.testkit.tenants import OAuthWorld, ShiftedClock, oauth_world

PROCESSES = 50


@pytest.fixture(scope="module")
def world(stack: Stack) -> OAuthWorld:
    return oauth_world(stack)


def all_at_once(
    refreshers: list[OAuthRefresher], call: Callable[[OAuthRefresher], AccessGrant]
) -> list[AccessGrant]:
    """Every refresher calls at the same moment, each on a thread of its own."""
    start = threading.Barrier(len(refreshers))
    results: list[AccessGrant | BaseException] = [RuntimeError("not run")] * len(refreshers)

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = call(refreshers[n])
        except BaseException as error:  # reported below
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(refreshers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    return [r for r in results if isinstance(r, AccessGrant)]


def past_version(company: str, rejected: int) -> Callable[[OAuthRefresher], AccessGrant]:
    return lambda refresher: refresher.access_token(company, rejected=rejected)


def test_fifty_processes_make_one_token_call_per_expiry_and_keep_the_grant(
    world: OAuthWorld,
) -> None:
    company = world.onboard(access_lifetime=600)
    oauth = world.stack.simulator.oauth
    clock = ShiftedClock()
    processes = [world.process(clock) for _ in range(PROCESSES)]

    # The record has no access token yet: all fifty need one at once.
    grants = all_at_once(processes, lambda p: p.access_token(company))
    assert oauth.call_count_for(company) == 1
    assert {g.version for g in grants} == {1}
    assert len({g.token for g in grants}) == 1

    # Every process's request is answered 401 (say Pleo revoked the token early): each asks
    # past the version it was given.
    for rejected in (1, 2):
        grants = all_at_once(processes, past_version(company, rejected))
        assert {g.version for g in grants} == {rejected + 1}
        assert oauth.call_count_for(company) == rejected + 1

    # The access token nears its expiry (a minute left): refreshed ahead, once, by one.
    assert grants[0].refresh_at == (grants[0].expires_at or 0) - 60
    clock.shift_seconds = (grants[0].refresh_at or 0) - time.time() + 0.1
    grants = all_at_once(processes, lambda p: p.access_token(company))
    assert {g.version for g in grants} == {4}
    assert oauth.call_count_for(company) == 4

    assert oauth.call_count_for(company, "rotated") == 4  # nothing reused, lost or refused
    grant = oauth.grant_of(grants[0].token)
    assert grant is not None
    assert grant.alive
    assert oauth.authenticate(grants[0].token) == (company, grant.scopes)
    assert sum(p.refreshes for p in processes) == 4
    record = world.registry().get(company)
    assert (record.status, record.version, record.refresh_lease_expires_at) == ("active", 4, None)


def test_a_lost_refresh_answer_ends_in_relink_needed_never_a_loop(world: OAuthWorld) -> None:
    company = world.onboard()
    world.stack.simulator.inject_token_fault(TokenFault("lose_answer"))
    with pytest.raises(RelinkNeeded, match="install the app again"):
        world.process().access_token(company)
    oauth = world.stack.simulator.oauth
    # The call Pleo rotated on, then one retry with the same (now spent) refresh token: a
    # reuse, which revoked the grant.
    assert oauth.call_count_for(company) == 2
    assert oauth.call_count_for(company, "lost") == 1
    assert oauth.call_count_for(company, "reused") == 1
    record = world.registry().get(company)
    assert record.status == "relink_needed"
    assert record.refresh_lease_expires_at is None
    # Every later attempt stops at the registry: no more calls to Pleo.
    for _ in range(3):
        with pytest.raises(RelinkNeeded):
            world.process().access_token(company)
    assert oauth.call_count_for(company) == 2


def test_a_5xx_before_rotating_is_retried_and_refreshes(world: OAuthWorld) -> None:
    company = world.onboard()
    world.stack.simulator.inject_token_fault(TokenFault("status", status=503))
    grant = world.process().access_token(company)
    assert grant.version == 1
    oauth = world.stack.simulator.oauth
    assert (oauth.call_count_for(company, "fault"), oauth.call_count_for(company)) == (1, 2)


def test_wrong_client_credentials_leave_the_grant_alone(world: OAuthWorld) -> None:
    company = world.onboard()
    wrong = StaticClientCredentials(ClientCredentials("sim-client-id", "not-the-secret"))
    refresher = OAuthRefresher(world.registry(), world.cipher(), world.endpoint(wrong))
    with pytest.raises(OAuthClientRejected, match="PLEO_OAUTH_CLIENT_SECRET_ARN"):
        refresher.access_token(company)
    record = world.registry().get(company)
    assert (record.status, record.version, record.refresh_lease_expires_at) == ("active", 0, None)
    assert world.process().access_token(company).version == 1  # the grant still works
