"""One company's budget shared over real HTTP by two walks (two "processes": each its own
client and view of the budget) and a consumer using the layer's transport, on the DynamoDB
table of template.yaml, against a simulator enforcing the limit per credential: no 429."""

from __future__ import annotations

import base64
import threading
import uuid

import httpx

from pleo_scope.aws.rate_budget import DynamoRateBudgetStore
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.rate_budget import FleetBudget
from pleo_scope.rate_limit import RateBudgetTransport
from tests.support import API_KEY, make_client, walk_scope_bytes
from tooling.pleo_sim import SimJob
from tooling.pleo_sim.rate_meter import RateLimit, credential_of
from tooling.testkit.harness import Stack


def test_two_walks_and_a_consumer_share_one_budget_without_a_429(stack: Stack) -> None:
    simulator, clock = stack.simulator, SystemClock()
    base_url = stack.aws.function_env["PLEO_API_BASE_URL"]
    key = f"company#{uuid.uuid4()}"
    # The simulator allows 20 a second; the budget aims under it, as Pleo advises (a slot
    # boundary holds N + 1 starts, and a request may start up to one interval late).
    per_minute = 18 * 60
    jobs = [simulator.add_job(SimJob(str(uuid.uuid4()), generated_items=350)) for _ in range(2)]
    stores = [
        DynamoRateBudgetStore(stack.app.app.dynamodb, stack.aws.physical["RateBudgetTable"])
        for _ in range(3)
    ]
    budgets = [FleetBudget(store, key, per_minute, clock) for store in stores]
    pages: list[int] = []
    simulator.meter.reset()
    simulator.meter.set_limit(RateLimit(20, 1.0))
    try:

        def walk(job: SimJob, budget: FleetBudget) -> None:
            client = make_client(base_url=base_url, clock=clock, page_size=10, slots=budget)
            pages.append(walk_scope_bytes(client, job.id, Budget.unbounded(clock))[1])

        def consume(budget: FleetBudget) -> None:
            auth = httpx.BasicAuth(API_KEY, "")
            transport = RateBudgetTransport(budget)
            with httpx.Client(base_url=base_url, transport=transport, auth=auth) as http:
                for _ in range(20):
                    http.get(f"/v3/export-jobs/{jobs[0].id}").raise_for_status()

        threads = [
            threading.Thread(target=walk, args=(jobs[0], budgets[0])),
            threading.Thread(target=walk, args=(jobs[1], budgets[1])),
            threading.Thread(target=consume, args=(budgets[2],)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        basic = base64.b64encode(f"{API_KEY}:".encode()).decode()
        credential = credential_of({"authorization": f"Basic {basic}"})
        sent = simulator.meter.requests(credential)
        throttled = simulator.meter.throttled(credential)
        busiest_second = simulator.meter.most_in_any_window(credential, 1.0)
    finally:
        simulator.meter.set_limit(None)
    assert pages == [35, 35]
    assert sent == 35 + 35 + 20 == sum(b.stats.slots_taken for b in budgets)
    assert throttled == 0
    assert busiest_second <= 20
    assert sum(store.calls.calls for store in stores) / sent <= 0.25
