"""TenantPleo: each job's calls go to its company's own client, made once per company; the
registry is read at every job check (so `disable` stops the next invocation), a changed
credential or limit gets a new client, and the stats add up across clients."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.errors import TenantDisabled, UnknownTenant
from pleo_scope.tenants import ApiKeyCredential, Tenant
from pleo_scope.tenants_access import TenantAccess, TenantResolver
from pleo_scope.tenants_pleo import TenantPleo
from tests.fakes import MemoryPleo, MemoryTenantRegistry
from tooling.pleo_sim import SimJob

A = "5c1e0a3e-7d7b-4b8e-9a0e-3f2d1c0b9a87"
B = "0b8d2f4e-1a2b-4c3d-8e9f-a0b1c2d3e4f5"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pleo-export-scope/tenants/"
JOB_A = "11111111-1111-4111-8111-111111111111"
JOB_B = "22222222-2222-4222-8222-222222222222"
JOB_DEFAULT = "33333333-3333-4333-8333-333333333333"


def tenant(company: str, limit: int | None = None) -> Tenant:
    return Tenant(company, "active", ApiKeyCredential(f"{ARN}{company}-AbC123"), limit)


class Connections:
    """One MemoryPleo per connect call, holding the job of the company it was made for."""

    def __init__(self) -> None:
        self.made: list[tuple[TenantAccess, MemoryPleo]] = []
        self.closed = 0

    def connect(self, access: TenantAccess) -> MemoryPleo:
        pleo = MemoryPleo()
        for job_id, company in ((JOB_A, A), (JOB_B, B), (JOB_DEFAULT, None)):
            if company == access.company_id:
                pleo.add_job(SimJob(job_id, generated_items=3))
        self.made.append((access, pleo))
        return pleo


@pytest.fixture
def registry() -> MemoryTenantRegistry:
    found = MemoryTenantRegistry()
    found.put(tenant(A))
    found.put(tenant(B, 120))
    return found


def budget() -> Budget:
    return Budget.unbounded(SystemClock())


def test_each_company_gets_its_own_client_made_once(registry: MemoryTenantRegistry) -> None:
    connections = Connections()
    pleo = TenantPleo(TenantResolver(registry), connections.connect)
    for _ in range(2):
        for job in (JobRef(JOB_A, A), JobRef(JOB_B, B), JobRef(JOB_DEFAULT)):
            assert pleo.get_job(job, budget()).id == job.job_id
            assert len(pleo.get_items_page(job, None, budget()).items) == 3
    assert [access.company_id for access, _ in connections.made] == [A, B, None]
    assert connections.made[1][0].max_requests_per_minute == 120
    # Each client answered only its own company's job.
    for access, client in connections.made:
        assert {job for _, job in client.log} == {
            {A: JOB_A, B: JOB_B, None: JOB_DEFAULT}[access.company_id]
        }
    assert pleo.stats.requests == sum(c.stats.requests for _, c in connections.made) == 12


def test_the_registry_is_read_at_every_job_check_not_for_pages(
    registry: MemoryTenantRegistry,
) -> None:
    tenants = TenantResolver(registry)
    pleo = TenantPleo(tenants, Connections().connect)
    job = JobRef(JOB_A, A)
    pleo.get_job(job, budget())
    for _ in range(3):
        pleo.get_items_page(job, None, budget())
    assert tenants.reads == 1
    registry.tenants[A] = replace(registry.tenants[A], status="disabled")
    with pytest.raises(TenantDisabled):
        pleo.get_job(job, budget())
    assert tenants.reads == 2


def test_an_unknown_company_is_refused_before_any_client_is_made(
    registry: MemoryTenantRegistry,
) -> None:
    connections = Connections()
    pleo = TenantPleo(TenantResolver(registry), connections.connect)
    with pytest.raises(UnknownTenant):
        pleo.get_job(JobRef(JOB_A, "9f9f9f9f-9f9f-4f9f-8f9f-9f9f9f9f9f9f"), budget())
    assert connections.made == []


def test_a_changed_credential_or_limit_gets_a_new_client_and_the_stats_go_on(
    registry: MemoryTenantRegistry,
) -> None:
    connections = Connections()
    pleo = TenantPleo(TenantResolver(registry), connections.connect)
    job = JobRef(JOB_A, A)
    pleo.get_job(job, budget())
    registry.tenants[A] = replace(registry.tenants[A], status="active")  # nothing it is built from
    pleo.get_job(job, budget())
    assert len(connections.made) == 1
    registry.tenants[A] = tenant(A, 60)
    pleo.get_job(job, budget())
    assert len(connections.made) == 2
    assert connections.made[1][0].max_requests_per_minute == 60
    assert pleo.stats.requests == 3  # the replaced client's two still count
