"""`make demo`, second part: three Pleo companies on the same deployment (DESIGN.md,
"Tenants"), onboarded as an integration would (the simulator issues each its credential, the
secret goes under the naming convention, the record into the registry), each with a claimed
job, each triggered with its `companyId`:

- an `apiKey` company with a rate limit of its own (`maxRequestsPerMinute`);
- an `accessToken` company (its token kept fresh by the integration's own token service);
- a managed-OAuth company whose access tokens last `--oauth-lifetime` seconds, far shorter
  than its walk (Pleo slowed down), so that they expire during it and are refreshed on the way.

Runs inside `route_lambda` (a walk that does not fit in one invocation goes on in the state
machine). Prints one line per company: the credential kind, the scope, how long its walk took,
the requests it made to Pleo (and how many were refused with 401), the token refreshes with
the share of its lifetime each replaced token had run (refreshed by the first request in the
last fifth of its life, or the next one: one refresh per token life), and the units consumed
(every one naming the company).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantCredential,
)
from pleo_scope.tenants_access import DEFAULT_SECRET_PREFIX
from tooling.pleo_sim import Fault, PleoSimulator, SimJob
from tooling.pleo_sim.companies import READ_SCOPE
from tooling.testkit.executions import follow_walk
from tooling.testkit.local_stack import LocalLambdaContext, LocalStack

EARLIEST_REFRESH = 0.5
"""A token is refreshed no earlier than 4/5 of its life (less the refresh call's latency):
one refreshed before half of it had no expiry to call for it (the demo fails)."""


@dataclass(frozen=True)
class DemoCompany:
    id: str
    kind: str
    job: SimJob
    limit: int | None = None


@dataclass(frozen=True)
class CompanyResult:
    company: DemoCompany
    result: dict[str, Any]
    walk_seconds: float
    requests: int
    refused: int
    refreshes: int
    lives_used: tuple[float, ...]
    """Per refresh of a token the walk had used: the share of its lifetime it served."""
    units: int

    def row(self) -> tuple[object, ...]:
        scope = self.result["scope"]["key"].rsplit("/", 3)[0]
        return (
            self.company.id[:8],
            self.company.kind,
            "-" if self.company.limit is None else self.company.limit,
            self.result["pagesFetched"],
            self.result["itemsInScope"],
            f"{self.walk_seconds:.1f}",
            self.requests,
            self.refused,
            self.refreshes,
            _share_range(self.lives_used),
            self.units,
            scope,
        )


HEADERS = [
    "company",
    "credential",
    "req/min",
    "pages",
    "in scope",
    "walk s",
    "requests",
    "401s",
    "refreshes",
    "token life used",
    "units",
    "scope",
]


class Onboarding:
    """What an integration's onboarding does for one company, on the local stack."""

    def __init__(self, stack: LocalStack, simulator: PleoSimulator) -> None:
        self._stack = stack
        self._simulator = simulator
        self.registry = DynamoTenantRegistry(
            stack.client("dynamodb"), stack.physical["TenantTable"]
        )
        self._cipher = KmsTokenCipher(stack.client("kms"), stack.physical["TenantKey.Arn"])

    def static(self, kind: str, items: int, limit: int | None = None) -> DemoCompany:
        company = str(uuid.uuid4())
        value = f"demo-{kind}-{uuid.uuid4().hex}"
        issued = {value: {READ_SCOPE}}
        if kind == "apiKey":
            self._simulator.add_company(company, api_keys=issued)
        else:
            self._simulator.add_company(company, access_tokens=issued)
        arn = self._stack.client("secretsmanager").create_secret(
            Name=f"{DEFAULT_SECRET_PREFIX}{company}", SecretString=json.dumps({kind: value})
        )["ARN"]
        credential: TenantCredential = (
            ApiKeyCredential(arn) if kind == "apiKey" else AccessTokenCredential(arn)
        )
        return self._put(company, kind, credential, items, limit)

    def oauth(self, items: int, access_lifetime: float) -> DemoCompany:
        """The company installed the app (authorization code + PKCE, not here): its grant's
        refresh token is sealed and stored, with no access token yet."""
        company = str(uuid.uuid4())
        issued = self._simulator.grant(company, access_lifetime=access_lifetime)
        sealed = self._cipher.seal(company, "refreshToken", issued.refresh_token)
        return self._put(company, "oauth", OAuthCredential(StoredToken(sealed=sealed)), items)

    def _put(
        self,
        company: str,
        kind: str,
        credential: TenantCredential,
        items: int,
        limit: int | None = None,
    ) -> DemoCompany:
        self.registry.put(Tenant(company, "active", credential, limit))
        job = self._simulator.add_job(
            SimJob(str(uuid.uuid4()), generated_items=items, company_id=company)
        )
        return DemoCompany(company, kind, job, limit)


def run_companies(
    stack: LocalStack,
    simulator: PleoSimulator,
    handler: Any,
    *,
    items: int,
    lambda_timeout: float,
    oauth_lifetime: float,
    oauth_latency: float,
) -> list[CompanyResult]:
    onboarding = Onboarding(stack, simulator)
    companies = [
        onboarding.static("apiKey", items, limit=300),
        onboarding.static("accessToken", items),
        onboarding.oauth(items, oauth_lifetime),
    ]
    # Pleo answers the OAuth company slowly: its walk outlasts several of its tokens.
    simulator.inject(companies[2].job.id, Fault("latency", seconds=oauth_latency))
    results = []
    for company in companies:
        event = {"jobId": company.job.id, "companyId": company.id}
        started = time.perf_counter()
        result = handler(event, LocalLambdaContext(lambda_timeout))
        if not result["done"]:  # handed over: the state machine walks on (route_lambda)
            final = follow_walk(stack, company.job.id).final
            if final["status"] != "SUCCEEDED":
                raise SystemExit(f"{company.kind} company: state machine {final['status']}")
            result = json.loads(final["output"])
        walk_seconds = time.perf_counter() - started
        statuses = [r.status for r in simulator.log if r.job_id == company.job.id]
        results.append(
            CompanyResult(
                company,
                result,
                walk_seconds,
                requests=len(statuses),
                refused=statuses.count(401),
                refreshes=simulator.oauth.call_count_for(company.id, "rotated"),
                lives_used=tuple(simulator.oauth.lives_used(company.id)),
                units=0,
            )
        )
    return _with_units(stack, results)


def _with_units(stack: LocalStack, results: list[CompanyResult]) -> list[CompanyResult]:
    """Drain the queue as the consumers would, counting each job's units (each must name its
    job's company)."""
    sqs = stack.client("sqs")
    url = stack.physical["ScopeQueue"]
    units: dict[str, int] = {}
    companies = {r.company.job.id: r.company.id for r in results}
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            if body["jobId"] in companies:
                if body["companyId"] != companies[body["jobId"]]:
                    raise SystemExit(f"a unit of {body['jobId']} names another company")
                units[body["jobId"]] = units.get(body["jobId"], 0) + 1
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )
    return [dataclasses.replace(r, units=units.get(r.company.job.id, 0)) for r in results]


def render(results: list[CompanyResult]) -> str:
    return tabulate([r.row() for r in results], headers=HEADERS)


def _share_range(shares: tuple[float, ...]) -> str:
    if not shares:
        return "-"
    low, high = min(shares), max(shares)
    return f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low * 100:.0f}-{high:.0%}"
