"""The simulator's rate limit over real HTTP (set through its admin API), and the client
pacing itself under it in real time."""

from __future__ import annotations

import httpx

from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.pleo_client import ClientSettings, PleoClient
from pleo_scope.walk import PageWalker
from tooling.pleo_sim import PleoSimulator, SimJob

JOB = "88888888-0000-4000-8000-000000000008"


def client_for(url: str, per_minute: float | None) -> PleoClient:
    return PleoClient(
        ClientSettings(url, page_size=10, read_timeout=2.0, max_requests_per_minute=per_minute),
        CredentialAuth.of(Credential("apiKey", "sim-api-key")),
    )


def test_the_admin_api_sets_a_limit_that_answers_429_with_retry_after(
    simulator: PleoSimulator, sim_url: str
) -> None:
    simulator.add_job(SimJob(JOB, generated_items=10))
    reply = httpx.post(f"{sim_url}/_sim/rate-limit", json={"requests": 2, "perSeconds": 30})
    assert reply.status_code == 200
    auth = ("sim-api-key", "")
    statuses = [httpx.get(f"{sim_url}/v3/export-jobs/{JOB}", auth=auth) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 30
    httpx.post(f"{sim_url}/_sim/rate-limit", json={"requests": None}).raise_for_status()
    assert httpx.get(f"{sim_url}/v3/export-jobs/{JOB}", auth=auth).status_code == 200


def test_a_paced_walk_in_real_time_gets_no_429(simulator: PleoSimulator, sim_url: str) -> None:
    simulator.add_job(SimJob(JOB, generated_items=200))  # 20 pages
    httpx.post(f"{sim_url}/_sim/rate-limit", json={"requests": 10, "perSeconds": 1})
    client = client_for(sim_url, 540)  # 9 per second
    walker = PageWalker(client, JobRef(JOB), Budget.unbounded(SystemClock()))
    pages = sum(1 for _ in walker)
    assert pages == 20
    assert client.stats.throttles == 0
    assert {r.status for r in simulator.log} == {200}
