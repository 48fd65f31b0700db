"""The simulator's rate meter: requests per credential in sliding windows, and Pleo's limit
enforced per credential (429 + Retry-After), in memory and over the admin API."""

from __future__ import annotations

import base64

import httpx

from tests.support import FakeClock
from tooling.pleo_sim import PleoSimulator, SimJob, SimRequest
from tooling.pleo_sim.rate_meter import RateLimit, RateMeter, credential_of
from tooling.pleo_sim.server import serve

JOB = "88888888-0000-4000-8000-000000000008"


def basic(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"authorization": f"Basic {token}"}


def test_windows_are_sliding_not_fixed() -> None:
    clock = FakeClock()
    meter = RateMeter(clock.monotonic)
    # 10 requests at the end of one minute and 10 at the start of the next: a fixed window
    # would see 10 in each; any 10 s holds all 20.
    for _ in range(10):
        meter.arrive("a")
    clock.sleep(5.0)
    for _ in range(10):
        meter.arrive("a")
    clock.sleep(10.0)
    meter.arrive("a")
    assert meter.requests("a") == 21
    assert meter.most_in_any_window("a", 10.0) == 20
    assert meter.most_in_any_window("a", 60.0) == 21
    assert meter.most_in_any_window("b", 10.0) == 0


def test_the_limit_is_per_credential_and_refused_requests_are_counted_not_admitted() -> None:
    clock = FakeClock()
    meter = RateMeter(clock.monotonic, RateLimit(3, 60.0))
    assert [meter.arrive("a") for _ in range(3)] == [None, None, None]
    assert meter.arrive("b") is None  # b has a budget of its own
    clock.sleep(20.0)
    assert meter.arrive("a") == 40  # the window's oldest admitted request leaves in 40 s
    assert meter.throttled("a") == 1
    assert meter.throttled() == 1
    assert meter.requests("a") == 4
    clock.sleep(40.0)
    assert meter.arrive("a") is None


def test_the_simulator_answers_429_per_credential() -> None:
    clock = FakeClock()
    simulator = PleoSimulator(
        api_keys={"key-a": {"export-jobs:read"}, "key-b": {"export-jobs:read"}},
        rate_limit_per_credential=RateLimit(2, 60.0),
        clock=clock.monotonic,
    )
    simulator.add_job(SimJob(JOB, generated_items=5))
    target = f"/v3/export-jobs/{JOB}"
    answers = [simulator.handle(SimRequest("GET", target, basic("key-a"))) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "60"
    assert simulator.handle(SimRequest("GET", target, basic("key-b"))).status == 200
    assert simulator.meter.throttled(credential_of(basic("key-a"))) == 1
    assert "key-a" not in credential_of(basic("key-a"))  # a digest, never the credential


def test_the_admin_api_sets_the_limit_and_reports_the_meter() -> None:
    simulator = PleoSimulator()
    simulator.add_job(SimJob(JOB, generated_items=5))
    with serve(simulator) as url:
        httpx.post(f"{url}/_sim/rate-limit/credential", json={"requests": 1}).raise_for_status()
        key = basic("sim-api-key")
        statuses = [
            httpx.get(f"{url}/v3/export-jobs/{JOB}", headers=key).status_code for _ in range(2)
        ]
        report = httpx.get(f"{url}/_sim/rate-meter").json()["credentials"]
    assert statuses == [200, 429]
    assert report == [
        {
            "credential": credential_of(key),
            "requests": 2,
            "throttled": 1,
            "most_in_10s": 2,
            "most_in_60s": 2,
        }
    ]
