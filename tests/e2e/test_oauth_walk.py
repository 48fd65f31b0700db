"""A long walk of a managed-OAuth tenant whose access tokens last 30 s on the simulator's
clock (which runs 20 times faster than the wall clock: a token lasts 1.5 s): the walk goes on
through every expiry, and the only failed requests are the first 401 of each expiry when the
refresher cannot know when Pleo expires a token; none at all when it can (refreshed ahead)."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.oauth import OAuthRefresher
from pleo_scope.oauth_auth import OAuthAuth
from pleo_scope.pleo_client import ClientSettings, PleoClient
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.testkit.harness import Stack
from tooling.testkit.tenants import OAuthWorld, oauth_world

SPEED = 20.0
LIFETIME = 30.0
EXPIRIES = 4


@dataclass
class FastTime(SystemClock):
    """The simulator's time: `SPEED` times the wall clock's since the test began."""

    start_monotonic: float = field(default_factory=time.monotonic)
    start_epoch: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return (time.monotonic() - self.start_monotonic) * SPEED

    def seconds(self) -> float:
        return self.start_monotonic + self.elapsed()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.start_epoch + self.elapsed(), UTC)


@pytest.fixture(scope="module")
def fast() -> FastTime:
    return FastTime()


@pytest.fixture(scope="module")
def world(stack: Stack, fast: FastTime) -> Iterator[OAuthWorld]:
    simulator = PleoSimulator(clock=fast.seconds)
    with serve(simulator) as url:
        yield oauth_world(stack, simulator, url)


def walk_through_expiries(world: OAuthWorld, fast: FastTime, refresher: OAuthRefresher) -> str:
    """Walk a job far larger than needed, until `EXPIRIES` tokens have expired under it.

    The walk stops on the count of rotations Pleo answered, not on a fixed time: under load
    each refresh takes longer (on a clock 20x the wall's), and a fixed time would see fewer
    expiries. A walk that never gets there fails at `give_up` instead of running on."""
    company = world.onboard(access_lifetime=LIFETIME)
    oauth = world.simulator.oauth
    job = world.simulator.add_job(
        SimJob(str(uuid.uuid4()), generated_items=1_000_000, company_id=company)
    )
    client = PleoClient(
        ClientSettings(base_url=world.base_url, page_size=10, read_timeout=2.0),
        OAuthAuth(refresher, company),  # the oauth kind's httpx.Auth (pleo_scope/auth.py's seam)
    )
    budget = Budget.unbounded(SystemClock())
    give_up = fast.elapsed() + 4 * EXPIRIES * LIFETIME
    after: str | None = None
    client.get_job(JobRef(job.id), budget)
    # The first token, then one rotation per expiry; half a lifetime more walks on the last.
    while oauth.call_count_for(company, "rotated") < EXPIRIES + 1:
        assert fast.elapsed() < give_up, "the walk never saw every expiry"
        page = client.get_items_page(JobRef(job.id), after, budget)
        assert page.has_next_page
        after = page.end_cursor
    until = fast.elapsed() + LIFETIME / 2
    while fast.elapsed() < until:
        page = client.get_items_page(JobRef(job.id), after, budget)
        assert page.has_next_page
        after = page.end_cursor
    client.close()
    return job.id


def statuses(world: OAuthWorld, job_id: str) -> list[int]:
    return [r.status for r in world.simulator.log if r.job_id == job_id]


def test_when_pleo_expires_tokens_unseen_each_expiry_costs_one_401(
    world: OAuthWorld, fast: FastTime
) -> None:
    """The refresher's clock is the wall clock: to it a token lasts 30 real seconds, to Pleo
    1.5. Each expiry is found by a 401, which refreshes, and the request is sent again."""
    refresher = world.process()
    job_id = walk_through_expiries(world, fast, refresher)
    seen = statuses(world, job_id)
    company = world.simulator.job(job_id).company_id
    refreshes = world.simulator.oauth.call_count_for(company, "rotated")
    assert world.simulator.oauth.call_count_for(company) == refreshes  # nothing else
    assert refreshes - 1 >= EXPIRIES  # the first token, then one per expiry
    assert seen.count(401) == refreshes - 1  # the first 401 of each expiry, no other
    assert len([s for s in seen if s != 200]) == seen.count(401)
    assert all(after == 200 for before, after in itertools.pairwise(seen) if before == 401)


def test_when_the_clocks_agree_tokens_are_refreshed_ahead_and_nothing_fails(
    world: OAuthWorld, fast: FastTime
) -> None:
    refresher = world.process(fast)
    job_id = walk_through_expiries(world, fast, refresher)
    company = world.simulator.job(job_id).company_id
    refreshes = world.simulator.oauth.call_count_for(company, "rotated")
    assert refreshes - 1 >= EXPIRIES
    assert world.simulator.oauth.call_count_for(company) == refreshes
    assert set(statuses(world, job_id)) == {200}
