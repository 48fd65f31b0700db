"""Many companies, one deployment (DESIGN.md, "Tenants"), end to end on the simulator (several
companies, each with its own credentials) and moto (the registry and secrets created from
template.yaml): a trigger's companyId picks the registry record, its secret under the naming
convention and its own rate budget; the company is recorded on the walk, in the manifest, in
every unit and in the result; refusals are typed, final, and come before any request to Pleo
with the wrong credential."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.credentials import Credential
from pleo_scope.errors import (
    InvalidTenantRecord,
    JobNotFound,
    RelinkNeeded,
    TenantDisabled,
    TenantMismatch,
    UnknownTenant,
)
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    OAuthCredential,
    StoredToken,
    Tenant,
)
from tooling.ops.retrigger import claimed_event
from tooling.pleo_sim import Fault, SimJob
from tooling.pleo_sim.companies import READ_SCOPE
from tooling.pleo_sim.rate_meter import credential_of
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.demo_tenants import EARLIEST_REFRESH, render, run_companies
from tooling.testkit.harness import Stack
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.ops_cli import ops, ops_json, table_rows
from tooling.testkit.samples import load_event

PREFIX = "pleo-export-scope/tenants/"


@dataclass
class Company:
    id: str
    credential: Credential
    secret_arn: str

    @property
    def label(self) -> str:
        """The simulator's rate meter's name for this company's credential."""
        return credential_of({"authorization": self.credential.authorization_header()})

    def trigger(self, job: SimJob) -> dict[str, str]:
        return {"jobId": job.id, "companyId": self.id}


@pytest.fixture
def registry(stack: Stack) -> DynamoTenantRegistry:
    return DynamoTenantRegistry(stack.aws.client("dynamodb"), stack.aws.physical["TenantTable"])


@pytest.fixture
def onboard(stack: Stack, registry: DynamoTenantRegistry) -> Any:
    """Onboards a company as an integration would: Pleo issues it a credential (the
    simulator), its secret is stored under the prefix, its record put in the registry."""

    def make(
        kind: Literal["apiKey", "accessToken"] = "apiKey",
        limit: int | None = None,
    ) -> Company:
        company = str(uuid.uuid4())
        value = f"{kind}-{uuid.uuid4().hex}"
        credential = Credential(kind, value)
        issued = {value: {READ_SCOPE}}
        if kind == "apiKey":
            stack.simulator.add_company(company, api_keys=issued)
        else:
            stack.simulator.add_company(company, access_tokens=issued)
        arn = stack.aws.client("secretsmanager").create_secret(
            Name=f"{PREFIX}{company}", SecretString=json.dumps({kind: value})
        )["ARN"]
        record = ApiKeyCredential(arn) if kind == "apiKey" else AccessTokenCredential(arn)
        registry.put(Tenant(company, "active", record, limit))
        return Company(company, credential, arn)

    return make


def new_job(stack: Stack, company: Company, items: int = 25) -> SimJob:
    return stack.simulator.add_job(
        SimJob(str(uuid.uuid4()), generated_items=items, company_id=company.id)
    )


def test_an_api_key_tenant_s_job_is_published_with_its_company_everywhere(
    stack: Stack, onboard: Any
) -> None:
    company = onboard("apiKey", limit=300)
    job = new_job(stack, company)
    default_before = stack.simulator.meter.requests(
        credential_of({"authorization": Credential("apiKey", "sim-api-key").authorization_header()})
    )
    result = stack.invoke(company.trigger(job))
    assert result["done"] is True
    assert result["companyId"] == company.id
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job), company.id)
    manifest = stack.manifest_of(job.id)
    assert manifest is not None
    assert manifest["companyId"] == company.id
    walk = stack.walk_record(job.id)
    assert walk is not None
    assert walk["companyId"] == company.id
    # Every request went out with the company's own key, none with the default one.
    assert stack.simulator.meter.requests(company.label) == stack.simulator.request_count(job.id)
    default_key = Credential("apiKey", "sim-api-key").authorization_header()
    assert stack.simulator.meter.requests(credential_of({"authorization": default_key})) == (
        default_before
    )
    # ...and took their slots from the company's own budget, not the default tenant's.
    budgets = stack.aws.client("dynamodb").get_item(
        TableName=stack.aws.physical["RateBudgetTable"],
        Key={"budgetKey": {"S": f"company#{company.id}"}},
        ConsistentRead=True,
    )
    assert "Item" in budgets


def test_every_unit_names_the_company(stack: Stack, onboard: Any) -> None:
    company = onboard("accessToken")
    job = new_job(stack, company, items=12)
    stack.invoke(company.trigger(job))
    bodies = stack.drain_queue()
    assert bodies
    assert {body["companyId"] for body in bodies} == {company.id}


def test_the_eventbridge_trigger_carries_the_company(stack: Stack, onboard: Any) -> None:
    company = onboard("apiKey")
    job = new_job(stack, company, items=5)
    event = load_event("eventbridge-export-job-claimed.json", job.id)
    event["detail"]["companyId"] = company.id.upper()  # any letter case, used in lower case
    result = stack.invoke(event)
    assert (result["done"], result["companyId"]) == (True, company.id)


def test_a_rotated_access_token_is_read_again_on_a_401(stack: Stack, onboard: Any) -> None:
    """The integration's own token service rotated the secret: the cached token gets a 401,
    the secret is re-read once, and the walk goes on."""
    company = onboard("accessToken")
    stack.invoke(company.trigger(new_job(stack, company, items=3)))  # the secret is cached
    rotated = f"accessToken-{uuid.uuid4().hex}"
    stack.simulator.companies[company.id].access_tokens = {rotated: {READ_SCOPE}}
    stack.aws.client("secretsmanager").put_secret_value(
        SecretId=company.secret_arn, SecretString=json.dumps({"accessToken": rotated})
    )
    result = stack.invoke(company.trigger(new_job(stack, company, items=3)))
    assert result["done"] is True


@pytest.mark.parametrize("status", ["disabled", "unknown"])
def test_a_company_that_may_not_walk_is_refused_before_any_request(
    stack: Stack, onboard: Any, registry: DynamoTenantRegistry, status: str
) -> None:
    company = onboard("apiKey")
    job = new_job(stack, company)
    trigger = company.trigger(job)
    if status == "disabled":
        registry.set_status(company.id, "disabled")
        expected: type[Exception] = TenantDisabled
    else:
        trigger["companyId"] = str(uuid.uuid4())
        expected = UnknownTenant
    with pytest.raises(expected):
        stack.invoke(trigger)
    assert stack.simulator.request_count(job.id) == 0
    assert stack.manifest_of(job.id) is None
    assert stack.drain_queue() == []


def test_a_record_naming_another_company_s_secret_is_refused(
    stack: Stack, onboard: Any, registry: DynamoTenantRegistry
) -> None:
    victim, company = onboard("apiKey"), onboard("apiKey")
    # The record names the victim's secret (a copy-paste, or worse).
    registry.set_credential(company.id, ApiKeyCredential(victim.secret_arn))
    job = new_job(stack, company)
    with pytest.raises(InvalidTenantRecord, match="not this company's secret"):
        stack.invoke(company.trigger(job))
    assert stack.simulator.meter.requests(victim.label) == 0
    assert stack.simulator.request_count(job.id) == 0


def test_a_job_of_a_triggered_as_b_is_refused_and_nothing_published(
    stack: Stack, onboard: Any
) -> None:
    """Isolation: B's credential reads no job of A's. Pleo answers 404 to it, so a job B has
    never walked is JobNotFound; a job already walked for A is TenantMismatch, before any
    request with B's credential reaches Pleo, and A's walk is left as it was."""
    a, b = onboard("apiKey"), onboard("apiKey")
    fresh = new_job(stack, a)
    with pytest.raises(JobNotFound):
        stack.invoke(b.trigger(fresh))
    assert stack.manifest_of(fresh.id) is None
    assert stack.walk_record(fresh.id) is None

    walked = new_job(stack, a)
    assert stack.invoke(a.trigger(walked))["done"] is True
    stack.drain_queue()
    b_requests = stack.simulator.meter.requests(b.label)
    walk_before = stack.walk_record(walked.id)
    manifest_before = stack.manifest_of(walked.id)
    with pytest.raises(TenantMismatch, match=f"walked for company {a.id}"):
        stack.invoke(b.trigger(walked))
    assert stack.simulator.meter.requests(b.label) == b_requests  # none with B's credential
    assert stack.walk_record(walked.id) == walk_before  # no final error written on A's walk
    assert stack.manifest_of(walked.id) == manifest_before
    assert stack.drain_queue() == []
    # The default tenant is another company too.
    with pytest.raises(TenantMismatch, match="this trigger names the default tenant"):
        stack.invoke({"jobId": walked.id})
    # A itself goes on as before (its stored result, within the idempotency window).
    assert stack.invoke(a.trigger(walked))["companyId"] == a.id


@pytest.fixture
def routed(stack: Stack) -> Iterator[None]:
    """moto's Lambda (the CLI's invocations) runs the handler, in this process."""
    with route_lambda(stack.app.lambda_handler, 30):
        yield


@pytest.mark.usefixtures("routed")
def test_status_list_and_retrigger_name_the_job_s_company(stack: Stack, onboard: Any) -> None:
    company = onboard("apiKey")
    job = new_job(stack, company, items=5)
    stack.invoke(company.trigger(job))
    status = ops_json(stack, "status", job.id)
    assert status["companyId"] == company.id
    assert table_rows(ops(stack, "status", job.id).stdout)["company"] == company.id
    listed = {s["jobId"]: s for s in ops_json(stack, "list", "--all")}
    assert listed[job.id]["companyId"] == company.id
    # The re-sent trigger names the company the walk record keeps (else: TenantMismatch).
    stack.forget_idempotency()
    sent = ops(stack, "retrigger", job.id, "--wait")  # text: the function's EMF shares stdout
    assert sent.exit_code == 0, sent.output
    assert "done: the scope is published" in sent.stdout
    walk = stack.walk_record(job.id)
    assert walk is not None
    assert (walk["runId"], walk["companyId"]) == ("2", company.id)  # walked again, as the company
    event = claimed_event(job.id, "pleo.export-jobs", "eu-west-1", "1", company.id)
    assert event["detail"] == {"jobId": job.id, "companyId": company.id}
    assert "companyId" not in claimed_event(job.id, "pleo.export-jobs", "eu-west-1", "1")["detail"]


@pytest.fixture
def cipher(stack: Stack) -> KmsTokenCipher:
    return KmsTokenCipher(stack.aws.client("kms"), stack.aws.physical["TenantKey.Arn"])


def onboard_oauth(
    stack: Stack, registry: DynamoTenantRegistry, cipher: KmsTokenCipher, lifetime: float
) -> str:
    """The company installed the app: its grant's refresh token sealed in its record."""
    company = str(uuid.uuid4())
    issued = stack.simulator.grant(company, access_lifetime=lifetime)
    sealed = cipher.seal(company, "refreshToken", issued.refresh_token)
    registry.put(Tenant(company, "active", OAuthCredential(StoredToken(sealed=sealed))))
    return company


def test_an_oauth_tenant_walks_through_its_tokens_expiring(
    stack: Stack, registry: DynamoTenantRegistry, cipher: KmsTokenCipher
) -> None:
    """Tokens of 1 s, a walk of 4 s (Pleo slowed down): refreshed on the way, one refresh
    per expiry (each rotates both tokens), the walk published."""
    company = onboard_oauth(stack, registry, cipher, lifetime=1.0)
    job = stack.simulator.add_job(
        SimJob(str(uuid.uuid4()), generated_items=200, company_id=company)
    )
    stack.simulator.inject(job.id, Fault("latency", seconds=0.2))
    result = stack.invoke({"jobId": job.id, "companyId": company})
    assert (result["done"], result["companyId"]) == (True, company)
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job), company)
    rotations = stack.simulator.oauth.call_count_for(company, "rotated")
    assert rotations >= 3  # the first token, then the expiries during the walk
    assert stack.simulator.oauth.call_count_for(company) == rotations  # no failed refresh
    statuses = [r.status for r in stack.simulator.log if r.job_id == job.id]
    assert statuses.count(401) <= rotations  # at most the first 401 of an expiry
    assert registry.get(company).status == "active"


def test_a_refused_grant_ends_in_relink_needed_and_a_new_one_resumes_the_walk(
    stack: Stack, registry: DynamoTenantRegistry, cipher: KmsTokenCipher
) -> None:
    company = onboard_oauth(stack, registry, cipher, lifetime=3600)
    job = stack.simulator.add_job(SimJob(str(uuid.uuid4()), generated_items=60, company_id=company))
    # Mid-walk the company uninstalls the app: every token of the grant stops working.
    stack.simulator.inject(job.id, Fault("revoke", on_requests=frozenset({4}), endpoint="any"))
    with pytest.raises(RelinkNeeded):
        stack.invoke({"jobId": job.id, "companyId": company})
    assert registry.get(company).status == "relink_needed"
    walk = stack.walk_record(job.id)
    assert walk is not None
    assert walk["finalError"]["name"] == {"S": "RelinkNeeded"}
    pages_before = int(walk["pagesFetched"])
    assert pages_before >= 2
    assert stack.manifest_of(job.id) is None
    # Until a new grant is stored, a re-sent trigger fails at once, with no request to Pleo.
    requests = stack.simulator.request_count(job.id)
    with pytest.raises(RelinkNeeded):
        stack.invoke({"jobId": job.id, "companyId": company})
    assert stack.simulator.request_count(job.id) == requests

    issued = stack.simulator.grant(company, access_lifetime=3600)
    sealed = cipher.seal(company, "refreshToken", issued.refresh_token)
    registry.set_credential(company, OAuthCredential(StoredToken(sealed=sealed)))
    result = stack.invoke({"jobId": job.id, "companyId": company})
    assert result["done"] is True
    assert result["pagesFetched"] == 6  # 60 items in pages of 10, over both invocations
    first_pages = [r for r in stack.simulator.log if r.job_id == job.id and r.endpoint == "items"]
    assert sum(1 for r in first_pages if "after" not in r.query) == 1  # resumed, not restarted
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job), company)


@pytest.mark.usefixtures("routed")
def test_the_demo_s_three_companies_publish_each_under_its_own_company(stack: Stack) -> None:
    results = run_companies(
        stack.aws,
        stack.simulator,
        stack.app.lambda_handler,
        items=60,
        lambda_timeout=30,
        oauth_lifetime=1.0,
        oauth_latency=0.3,
    )
    assert [r.company.kind for r in results] == ["apiKey", "accessToken", "oauth"]
    for r in results:
        assert (r.result["done"], r.result["companyId"]) == (True, r.company.id)
        assert r.units == -(-r.result["itemsInScope"] // 100)
    assert results[2].refreshes >= 2  # its tokens expired during its walk (6 pages x 0.3 s)
    # Each token it used was refreshed ahead of its expiry, not again and again before it.
    assert len(results[2].lives_used) == results[2].refreshes - 1  # the first had no token
    assert min(results[2].lives_used) >= EARLIEST_REFRESH
    assert [r.refreshes for r in results[:2]] == [0, 0]
    assert "oauth" in render(results)
