"""The refresh protocol (pleo_scope/oauth.py) on the in-memory registry and cipher, against a
token endpoint that keeps Pleo's rules (rotation, reuse revokes the grant): fresh tokens are
used, the lease holder skips when someone refreshed, waiters never call the endpoint, a refused
or lost grant ends in relink_needed and a typed error, never in a loop."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from pleo_scope.errors import (
    OAuthClientRejected,
    RelinkNeeded,
    TenantDisabled,
    TokenRefreshInProgress,
    TokenRefreshUnavailable,
)
from pleo_scope.oauth import OAuthRefresher, RefreshSettings
from pleo_scope.tenants import FreshTokens, OAuthCredential, StoredToken, Tenant
from tests.fakes import MemoryTenantRegistry, PleoTokens, ReversingCipher
from tests.support import FakeClock

COMPANY = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"


class RecordedReports:
    """The refresher's relink reports, as the metric would count them."""

    def __init__(self) -> None:
        self.companies: list[str] = []

    def relink_needed(self, company_id: str) -> None:
        self.companies.append(company_id)


@dataclass
class World:
    clock: FakeClock
    registry: MemoryTenantRegistry
    cipher: ReversingCipher
    pleo: PleoTokens
    reports: RecordedReports = field(default_factory=RecordedReports)

    def refresher(self, **settings: float) -> OAuthRefresher:
        return OAuthRefresher(
            self.registry,
            self.cipher,
            self.pleo,
            settings=RefreshSettings(**settings),
            clock=self.clock,
            reports=self.reports,
        )

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()

    @property
    def tenant(self) -> Tenant:
        return self.registry.tenants[COMPANY]


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    registry = MemoryTenantRegistry()
    registry.put(Tenant(COMPANY, "active", OAuthCredential(StoredToken(plain="rt-0"))))
    return World(clock, registry, ReversingCipher(), PleoTokens())


def with_access_token(world: World, expires_in: float) -> None:
    credential = OAuthCredential(
        StoredToken(plain="rt-0"), StoredToken(plain="at-onboarding"), int(world.now + expires_in)
    )
    world.registry.tenants[COMPANY] = Tenant(COMPANY, "active", credential)


def test_a_record_without_an_access_token_is_refreshed_first_and_both_tokens_stored(
    world: World,
) -> None:
    grant = world.refresher().access_token(COMPANY)
    assert (grant.token, grant.version) == ("at-1", 1)
    assert grant.authorization_header() == "Bearer at-1"
    stored = world.tenant.oauth()
    # Sealed for this company and field (the fake's "ciphertext" names them).
    assert stored.refresh_token == StoredToken(sealed=f"{COMPANY}/refreshToken/1-tr".encode())
    assert stored.access_token == StoredToken(sealed=f"{COMPANY}/accessToken/1-ta".encode())
    assert stored.expires_at == int(world.now) + 600
    assert world.tenant.refresh_lease_expires_at is None  # released by the same write
    assert world.pleo.calls == 1


def test_a_fresh_token_is_used_and_cached(world: World) -> None:
    with_access_token(world, 600)
    refresher = world.refresher()
    assert refresher.access_token(COMPANY).token == "at-onboarding"
    calls = world.registry.calls
    for _ in range(100):
        assert refresher.access_token(COMPANY).version == 0
    assert world.registry.calls == calls  # no registry read per request
    assert world.pleo.calls == 0


def test_refreshed_ahead_of_expiry_by_a_fraction_of_a_short_lifetime(world: World) -> None:
    world.pleo.lifetime = 30
    refresher = world.refresher()
    assert refresher.access_token(COMPANY).version == 1
    world.clock.elapsed += 23  # 7 s left: more than a fifth of 30 s
    assert refresher.access_token(COMPANY).version == 1
    world.clock.elapsed += 1.5  # 5.5 s left
    assert refresher.access_token(COMPANY).version == 2
    assert world.pleo.calls == 2
    # Another process reads the registry's record: the same rule from the stored lifetime.
    world.clock.elapsed += 23
    assert world.refresher().access_token(COMPANY).version == 2
    world.clock.elapsed += 1.5
    assert world.refresher().access_token(COMPANY).version == 3


def test_a_token_refreshed_mid_second_serves_its_whole_lifetime(world: World) -> None:
    """`expires_in` counts from the refresh, not from the last whole second: a 1 s token got
    at .7 s is used until its own refresh point (a fifth of a second ahead), here and in a
    process that reads it from the registry; one refresh per expiry, not three."""
    world.pleo.lifetime = 1
    world.clock.elapsed = 0.7
    refresher = world.refresher()
    assert refresher.access_token(COMPANY).version == 1
    world.clock.elapsed += 0.75  # 0.25 s left of its life, past the next whole second
    assert refresher.access_token(COMPANY).version == 1
    assert world.refresher().access_token(COMPANY).version == 1
    world.clock.elapsed += 0.1  # 0.15 s left: within the last fifth
    assert refresher.access_token(COMPANY).version == 2
    assert world.pleo.calls == 2


def test_a_rejected_version_is_refreshed_past_an_older_one_is_not(world: World) -> None:
    refresher = world.refresher()
    first = refresher.access_token(COMPANY)
    second = refresher.access_token(COMPANY, rejected=first.version)
    assert second.version == first.version + 1
    # A 401 on the old token, arriving after the refresh: the current one is used.
    assert world.refresher().access_token(COMPANY, rejected=first.version) == second
    assert world.pleo.calls == 2


def test_the_holder_rereads_and_skips_when_another_refreshed_meanwhile(world: World) -> None:
    """Between this process's read and its lease, another process refreshed: the lease
    write's returned record shows the new version, and no endpoint call is made."""
    with_access_token(world, 600)
    other = world.refresher()
    read = world.registry.get
    raced: list[int] = []

    def read_then_race(company_id: str) -> Tenant:
        tenant = read(company_id)
        if not raced:
            raced.append(0)
            raced.append(other.access_token(company_id, rejected=0).version)
        return tenant

    world.registry.get = read_then_race  # type: ignore[method-assign]
    grant = world.refresher().access_token(COMPANY, rejected=0)
    assert raced == [0, 1]
    assert grant.version == 1
    assert world.pleo.calls == 1  # the other's refresh only


def test_invalid_grant_sets_relink_needed_and_stops_for_good(world: World) -> None:
    world.pleo.revoked = True
    with pytest.raises(RelinkNeeded, match="install the app again"):
        world.refresher().access_token(COMPANY)
    assert world.tenant.status == "relink_needed"
    assert world.tenant.refresh_lease_expires_at is None
    assert world.reports.companies == [COMPANY]  # the relink alarm's metric
    with pytest.raises(RelinkNeeded):
        world.refresher().access_token(COMPANY)
    assert world.pleo.calls == 1  # the second never called Pleo
    assert world.reports.companies == [COMPANY]  # nor reported again: no new refusal
    # A new grant stored (the CLI's set-credential): refreshing works again.
    world.pleo.revoked, world.pleo.refresh_token = False, "rt-new"
    world.registry.set_credential(COMPANY, OAuthCredential(StoredToken(plain="rt-new")))
    assert world.refresher().access_token(COMPANY).token == "at-1"


def test_after_a_refusal_the_new_grant_s_token_is_sent_not_the_refused_one(world: World) -> None:
    """Mid-walk, Pleo revokes the grant: the 401's refresh is refused. Once a new grant is
    stored, the same process sends the new grant's token, not the old one it had cached."""
    refresher = world.refresher()
    old = refresher.access_token(COMPANY)
    world.pleo.revoked = True
    with pytest.raises(RelinkNeeded):
        refresher.access_token(COMPANY, rejected=old.version)
    world.pleo.revoked, world.pleo.refresh_token = False, "rt-new"
    world.registry.set_credential(COMPANY, OAuthCredential(StoredToken(plain="rt-new")))
    new = refresher.access_token(COMPANY)  # no 401 needed to find it
    assert (new.token, new.version) != (old.token, old.version)
    assert new.version > old.version


def test_a_report_that_fails_does_not_hide_the_refusal(world: World) -> None:
    class Unreachable:
        def relink_needed(self, company_id: str) -> None:
            raise OSError("stdout closed")

    world.pleo.revoked = True
    refresher = OAuthRefresher(world.registry, world.cipher, world.pleo, reports=Unreachable())
    with pytest.raises(RelinkNeeded):
        refresher.access_token(COMPANY)
    assert world.tenant.status == "relink_needed"


def test_an_answer_lost_after_rotating_ends_in_relink_needed_not_a_loop(world: World) -> None:
    world.pleo.script = ["lose_after"]
    with pytest.raises(RelinkNeeded):
        world.refresher().access_token(COMPANY)
    assert world.pleo.calls == 2  # the call, and one retry with the same refresh token
    assert world.pleo.revoked  # Pleo saw the retry as a reuse
    assert world.tenant.status == "relink_needed"
    assert world.reports.companies == [COMPANY]


def test_an_answer_lost_before_rotating_is_retried_once_and_refreshes(world: World) -> None:
    world.pleo.script = ["lose_before"]
    refresher = world.refresher()
    assert refresher.access_token(COMPANY).token == "at-1"
    assert (world.pleo.calls, refresher.refreshes) == (2, 2)


def test_an_answer_lost_twice_is_transient_and_releases_the_lease(world: World) -> None:
    world.pleo.script = ["lose_before", "lose_before"]
    with pytest.raises(TokenRefreshUnavailable, match="lost twice"):
        world.refresher().access_token(COMPANY)
    assert world.tenant.refresh_lease_expires_at is None
    assert world.tenant.status == "active"
    assert world.refresher().access_token(COMPANY).token == "at-1"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("unavailable", TokenRefreshUnavailable), ("client", OAuthClientRejected)],
)
def test_a_failure_that_leaves_the_grant_alone_releases_the_lease(
    world: World, fault: str, error: type[Exception]
) -> None:
    world.pleo.script = [fault]
    with pytest.raises(error):
        world.refresher().access_token(COMPANY)
    assert world.tenant.refresh_lease_expires_at is None
    assert (world.tenant.status, world.tenant.version) == ("active", 0)


def test_waiters_poll_with_back_off_and_never_call_the_endpoint(world: World) -> None:
    """Another process holds the lease; this one re-reads until the other's tokens land."""
    holder = world.refresher()
    world.registry.take_refresh_lease(COMPANY, holder.owner, world.now, world.now + 30)
    waiter = world.refresher()
    world.clock.sleeps.clear()
    sleep = world.clock.sleep

    def other_finishes_after_a_while(seconds: float) -> None:
        sleep(seconds)
        if world.clock.elapsed > 2:
            world.registry.release_refresh_lease(COMPANY, holder.owner)
            world.pleo.refresh_token = "rt-0"
            holder.access_token(COMPANY)

    world.clock.sleep = other_finishes_after_a_while  # type: ignore[method-assign]
    assert waiter.access_token(COMPANY).version == 1
    assert waiter.refreshes == 0
    assert world.pleo.calls == 1  # the holder's
    sleeps = world.clock.sleeps
    assert sleeps[0] == 0.05
    assert all(b >= a for a, b in itertools.pairwise(sleeps))
    assert max(sleeps) <= 1.0


def test_a_waiter_gives_up_typed_and_takes_over_a_dead_holders_lease(world: World) -> None:
    world.registry.take_refresh_lease(COMPANY, "dead", world.now, world.now + 30)
    impatient = world.refresher(wait_seconds=5)
    with pytest.raises(TokenRefreshInProgress, match="outlasted"):
        impatient.access_token(COMPANY)
    assert world.pleo.calls == 0
    # With the default wait (longer than a lease), the lease runs out and it takes over.
    patient = world.refresher()
    assert patient.access_token(COMPANY).version == 1
    assert world.pleo.calls == 1
    assert world.clock.elapsed > 30


def test_a_new_grant_stored_during_a_refresh_wins(world: World) -> None:
    """An operator stores a new grant while a refresh of the old one is in flight, and Pleo
    refuses the old one: that refusal does not mark the new grant relink_needed."""

    def operator_relinks() -> None:
        world.pleo.during_call = None
        world.pleo.refresh_token = "rt-new"  # the new installation's grant
        world.registry.set_credential(COMPANY, OAuthCredential(StoredToken(plain="rt-new")))

    world.pleo.during_call = operator_relinks
    grant = world.refresher().access_token(COMPANY)
    assert grant.version == 2  # set_credential made 1, the new grant's refresh 2
    assert world.tenant.status == "active"
    assert world.pleo.calls == 2
    assert world.reports.companies == []  # the old grant's refusal set nothing


def test_no_tenant_but_an_active_one(world: World) -> None:
    world.registry.tenants[COMPANY] = Tenant(COMPANY, "disabled", world.tenant.credential)
    with pytest.raises(TenantDisabled):
        world.refresher().access_token(COMPANY)
    assert world.pleo.calls == 0


def test_the_lease_outlasts_two_endpoint_calls_at_their_worst(world: World) -> None:
    refresher = world.refresher(lease_margin_seconds=5)
    assert refresher.lease_seconds == 2 * world.pleo.worst_case_seconds + 5
    leases: list[float] = []

    def note_lease() -> None:
        leases.append(world.tenant.refresh_lease_expires_at or 0.0)

    world.pleo.during_call = note_lease
    refresher.access_token(COMPANY)
    assert leases == [world.now + refresher.lease_seconds]
    assert world.registry.calls == 3  # read, lease (its own re-read), both tokens in one write


def test_a_failed_write_of_the_rotated_tokens_is_tried_again(world: World) -> None:
    """Pleo rotated: the new tokens are the grant's only live ones, worth a few attempts."""
    store = world.registry.store_tokens
    failures = [RuntimeError("ProvisionedThroughputExceededException")]

    def flaky_store(company_id: str, version: int, tokens: FreshTokens) -> Tenant | None:
        if failures:
            raise failures.pop()
        return store(company_id, version, tokens)

    world.registry.store_tokens = flaky_store  # type: ignore[method-assign]
    assert world.refresher().access_token(COMPANY).version == 1
    assert world.pleo.calls == 1
    # Failing every time: the error, and the lease released.
    failures[:] = [RuntimeError("down")] * 3
    with pytest.raises(RuntimeError, match="down"):
        world.refresher().access_token(COMPANY, rejected=1)
    assert world.tenant.refresh_lease_expires_at is None
