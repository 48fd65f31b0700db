"""The month-end storm's shape: its companies, their jobs at the simulator, the order of their
triggers and the storm's floor. Deterministic from the seed, so that the simulator's own
process (benchmarks/storm_simulator.py) and the driver build the same companies."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field

from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.faults import Fault

READ_SCOPE = "export-jobs:read"


@dataclass(frozen=True)
class StormShape:
    small_companies: int = 29
    small_items: int = 300
    large_companies: int = 10
    large_items: int = 20_000
    multi_jobs: int = 3
    multi_items: int = 5_000
    limit_per_minute: int = 300
    budget_ratio: float = 0.97
    """The companies' maxRequestsPerMinute as a share of Pleo's limit (aim under it)."""
    pleo_latency: float = 0.1
    aws_latency: float = 0.01
    concurrency: int = 8
    page_size: int = 100
    seed: int = 21
    slice_seconds: float | None = None
    """None: the template's AdmissionSliceSeconds."""
    timeout_seconds: float = 1800

    def scaled(self, factor: float) -> StormShape:
        def items(n: int) -> int:
            return max(1, round(n * factor))

        return StormShape(
            **{
                **self.__dict__,
                "small_items": items(self.small_items),
                "large_items": items(self.large_items),
                "multi_items": items(self.multi_items),
            }
        )


@dataclass
class Company:
    id: str
    kind: str  # small, large, multi
    api_key: str
    jobs: list[SimJob] = field(default_factory=list)


def build_companies(shape: StormShape, simulator: PleoSimulator) -> list[Company]:
    rng = random.Random(shape.seed)
    kinds = (
        [("small", 1, shape.small_items)] * shape.small_companies
        + [("large", 1, shape.large_items)] * shape.large_companies
        + [("multi", shape.multi_jobs, shape.multi_items)]
    )
    companies = []
    for kind, jobs, items in kinds:
        company = Company(str(uuid.UUID(int=rng.getrandbits(128), version=4)), kind, "")
        company.api_key = f"key-{company.id[:8]}-{rng.getrandbits(32):08x}"
        simulator.add_company(company.id, api_keys={company.api_key: {READ_SCOPE}})
        for _ in range(jobs):
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            job = simulator.add_job(SimJob(job_id, generated_items=items, company_id=company.id))
            simulator.inject(job.id, Fault("latency", seconds=shape.pleo_latency))
            company.jobs.append(job)
        companies.append(company)
    return companies


def trigger_order(shape: StormShape, companies: list[Company]) -> list[tuple[Company, SimJob]]:
    """Random (the seed), the large jobs among the first: they are shuffled together with a
    few small ones into the head of the storm, the other small ones after them."""
    rng = random.Random(shape.seed + 1)
    large = [(c, j) for c in companies if c.kind != "small" for j in c.jobs]
    small = [(c, j) for c in companies if c.kind == "small" for j in c.jobs]
    rng.shuffle(small)
    head = large + small[:3]
    rng.shuffle(head)
    return head + small[3:]


def pages(items: int, page_size: int) -> int:
    return max(1, math.ceil(items / page_size))


def floor_seconds(shape: StormShape, companies: list[Company]) -> float:
    per_page = max(shape.pleo_latency, 60 / shape.limit_per_minute)
    slowest = max(
        sum(pages(j.item_count, shape.page_size) for j in c.jobs) * per_page for c in companies
    )
    every_page = sum(pages(j.item_count, shape.page_size) for c in companies for j in c.jobs)
    return max(slowest, every_page * shape.pleo_latency / shape.concurrency)
