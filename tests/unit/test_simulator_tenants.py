"""The simulator's companies and its OAuth token endpoint, as Pleo states them
(pleo-api.md, "OAuth for partner apps"), in memory and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import FakeClock
from tooling.pleo_sim import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Fault,
    PleoSimulator,
    SimJob,
    TokenFault,
)
from tooling.pleo_sim.server import serve
from tooling.pleo_sim.transport import in_memory_transport

COMPANY_A = "a0000000-0000-4000-8000-00000000000a"
COMPANY_B = "b0000000-0000-4000-8000-00000000000b"
JOB_A = "a1111111-1111-4111-8111-111111111111"
JOB_B = "b2222222-2222-4222-8222-222222222222"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> PleoSimulator:
    simulator = PleoSimulator(clock=clock.monotonic)
    simulator.add_company(COMPANY_A, api_keys={"key-a": {"export-jobs:read"}})
    simulator.add_company(COMPANY_B, api_keys={"key-b": {"export-jobs:read"}})
    simulator.add_job(SimJob(JOB_A, generated_items=3, company_id=COMPANY_A))
    simulator.add_job(SimJob(JOB_B, generated_items=3, company_id=COMPANY_B))
    return simulator


@pytest.fixture
def http(sim: PleoSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="http://pleo.test", transport=in_memory_transport(sim)) as client:
        yield client


def refresh(
    http: httpx.Client,
    refresh_token: str,
    *,
    client: tuple[str, str] = (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=client,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_company_reads_its_own_jobs_and_another_companys_are_404(http: httpx.Client) -> None:
    assert http.get(f"/v3/export-jobs/{JOB_A}", auth=("key-a", "")).status_code == 200
    assert http.get(f"/v3/export-jobs/{JOB_B}/items", auth=("key-b", "")).status_code == 200
    for path in (f"/v3/export-jobs/{JOB_B}", f"/v3/export-jobs/{JOB_B}/items"):
        answer = http.get(path, auth=("key-a", ""))
        assert answer.status_code == 404, path
    assert http.get(f"/v3/export-jobs/{JOB_A}", auth=("nobody", "")).status_code == 401
    job = http.get(f"/v3/export-jobs/{JOB_A}", auth=("key-a", "")).json()["data"]
    assert job["companyId"] == COMPANY_A


def test_the_default_company_is_the_simulator_of_old(sim: PleoSimulator) -> None:
    job = sim.add_job(SimJob("c3333333-3333-4333-8333-333333333333", generated_items=1))
    with httpx.Client(base_url="http://pleo.test", transport=in_memory_transport(sim)) as http:
        assert http.get(f"/v3/export-jobs/{job.id}", auth=("sim-api-key", "")).status_code == 200
        assert http.get(f"/v3/export-jobs/{job.id}", headers=bearer("sim-access-token")).is_success
        assert http.get(f"/v3/export-jobs/{JOB_A}", auth=("sim-api-key", "")).status_code == 404
        sim.api_keys = {}
        assert http.get(f"/v3/export-jobs/{job.id}", auth=("sim-api-key", "")).status_code == 401


def test_a_refresh_rotates_both_tokens_and_the_old_ones_stop_at_once(
    sim: PleoSimulator, http: httpx.Client
) -> None:
    issued = sim.grant(COMPANY_A, access_lifetime=30)
    assert http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token)).is_success
    answer = refresh(http, issued.refresh_token)
    assert answer.status_code == 200
    tokens = answer.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in", "scope"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 30
    assert tokens["scope"] == "export-jobs:read"
    assert tokens["access_token"] != issued.access_token
    assert tokens["refresh_token"] != issued.refresh_token
    old = http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token))
    assert old.status_code == 401
    new = http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(tokens["access_token"]))
    assert new.status_code == 200
    # An OAuth token reads only its company's jobs too.
    other = http.get(f"/v3/export-jobs/{JOB_B}", headers=bearer(tokens["access_token"]))
    assert other.status_code == 404
    assert sim.token_requests == 1


def test_reusing_a_spent_refresh_token_revokes_the_whole_grant(
    sim: PleoSimulator, http: httpx.Client
) -> None:
    issued = sim.grant(COMPANY_A)
    tokens = refresh(http, issued.refresh_token).json()
    reused = refresh(http, issued.refresh_token)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # Every token of the grant is dead now, the newest pair included.
    assert refresh(http, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    answer = http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(tokens["access_token"]))
    assert answer.status_code == 401
    assert sim.oauth.call_count_for(COMPANY_A, "reused") == 1
    assert sim.token_requests == 3


def test_access_tokens_expire_on_the_simulators_clock(
    sim: PleoSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    issued = sim.grant(COMPANY_A, access_lifetime=30, refresh_lifetime=3600)
    clock.sleep(29.9)
    assert http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token)).is_success
    clock.sleep(0.1)
    answer = http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token))
    assert answer.status_code == 401
    tokens = refresh(http, issued.refresh_token).json()
    assert http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(tokens["access_token"])).is_success
    clock.sleep(3600)
    assert refresh(http, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_each_rotation_records_the_share_of_its_life_the_replaced_token_served(
    sim: PleoSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    issued = sim.grant(COMPANY_A, access_lifetime=10)
    clock.sleep(3)
    tokens = refresh(http, issued.refresh_token).json()  # the first token was never used
    http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(tokens["access_token"]))
    clock.sleep(8.5)
    tokens = refresh(http, tokens["refresh_token"]).json()
    clock.sleep(12)  # presented only once expired: still used up to its end
    assert (
        http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(tokens["access_token"])).status_code
        == 401
    )
    refresh(http, tokens["refresh_token"])
    assert sim.oauth.lives_used(COMPANY_A) == [0.85, 1.2]
    assert sim.oauth.lives_used(COMPANY_B) == []


def test_client_authentication_and_request_errors(sim: PleoSimulator, http: httpx.Client) -> None:
    issued = sim.grant(COMPANY_A)
    bad_client = refresh(http, issued.refresh_token, client=(DEFAULT_CLIENT_ID, "wrong"))
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    assert refresh(http, "sim-rt-unknown").json()["error"] == "invalid_grant"
    wrong_grant_type = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
    )
    assert wrong_grant_type.status_code == 400
    assert wrong_grant_type.json()["error"] == "unsupported_grant_type"
    # None of that spent the refresh token.
    assert refresh(http, issued.refresh_token).status_code == 200


def test_an_answer_lost_after_rotating_leaves_the_client_without_a_live_token(
    sim: PleoSimulator, http: httpx.Client
) -> None:
    issued = sim.grant(COMPANY_A)
    sim.inject_token_fault(TokenFault("lose_answer"))
    with pytest.raises(httpx.RemoteProtocolError):
        refresh(http, issued.refresh_token)
    # Pleo rotated: what the client still holds is spent, and presenting it revokes the grant.
    old = http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token))
    assert old.status_code == 401
    assert refresh(http, issued.refresh_token).json()["error"] == "invalid_grant"
    assert sim.oauth.grants[0].revoked
    assert [call.outcome for call in sim.oauth.calls] == ["lost", "reused"]


def test_a_status_fault_does_not_rotate(sim: PleoSimulator, http: httpx.Client) -> None:
    issued = sim.grant(COMPANY_A)
    sim.inject_token_fault(TokenFault("status", status=503))
    assert refresh(http, issued.refresh_token).status_code == 503
    assert refresh(http, issued.refresh_token).status_code == 200


def test_the_revoke_fault_revokes_the_jobs_company_only(
    sim: PleoSimulator, http: httpx.Client
) -> None:
    issued = sim.grant(COMPANY_A)
    sim.inject(JOB_A, Fault("revoke", endpoint="job"))
    assert http.get(f"/v3/export-jobs/{JOB_A}", auth=("key-a", "")).status_code == 401
    assert (
        http.get(f"/v3/export-jobs/{JOB_A}", headers=bearer(issued.access_token)).status_code == 401
    )
    assert http.get(f"/v3/export-jobs/{JOB_B}", auth=("key-b", "")).status_code == 200


def test_companies_grants_and_token_faults_over_http(sim: PleoSimulator) -> None:
    with serve(sim) as base_url, httpx.Client(base_url=base_url) as http:
        assert (
            http.post(
                "/_sim/companies", json={"id": "c0ffee00-0000-4000-8000-000000000000"}
            ).status_code
            == 201
        )
        job = {
            "id": "c4444444-4444-4444-8444-444444444444",
            "generatedItems": 2,
            "companyId": "c0ffee00-0000-4000-8000-000000000000",
        }
        assert http.post("/_sim/jobs", json=job).status_code == 201
        grant = http.post(
            "/_sim/companies/c0ffee00-0000-4000-8000-000000000000/grants",
            json={"accessLifetime": 60},
        ).json()
        assert grant["expiresIn"] == 60
        assert http.get(
            f"/v3/export-jobs/{job['id']}", headers=bearer(grant["accessToken"])
        ).is_success
        assert http.post("/_sim/oauth/faults", json=[{"kind": "lose_answer"}]).status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):
            refresh(http, grant["refreshToken"])
        assert http.get("/_sim/oauth/requests").json() == {"count": 1}
