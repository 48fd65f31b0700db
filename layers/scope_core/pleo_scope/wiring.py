"""Build the service from settings: once per Lambda container, once per demo or test run.

Building makes no AWS client and opens no connection: each client is made on its first call
(`LazyClient`), so importing the handler stays cheap and never touches the network.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import boto3
import httpx
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from pleo_scope import tenant_tokens
from pleo_scope.auth import CredentialAuth
from pleo_scope.aws.archive import S3ScopeArchive
from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.aws.clients import AWS_CONFIG, LazyClient
from pleo_scope.aws.hand_over import StepFunctionsHandOver
from pleo_scope.aws.idempotency import IdempotentTriggers
from pleo_scope.aws.ledger import DynamoPublishLedger
from pleo_scope.aws.queue import SqsScopeQueue
from pleo_scope.aws.rate_budget import DynamoRateBudgetStore
from pleo_scope.aws.secrets import SecretsManagerCredentialSource
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.clock import Clock, SystemClock
from pleo_scope.oauth import OAuthRefresher
from pleo_scope.oauth_auth import OAuthAuth
from pleo_scope.pleo_client import PleoClient
from pleo_scope.rate_budget import FleetRateLimiter
from pleo_scope.service import ScopeJobService, ServiceSettings
from pleo_scope.settings import Settings
from pleo_scope.tenants import AccessTokenCredential, ApiKeyCredential
from pleo_scope.tenants_access import KindCheckedSource, TenantAccess, TenantResolver
from pleo_scope.tenants_pleo import TenantPleo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

logger = logging.getLogger(__name__)


def _client(session: boto3.session.Session, service: str) -> Any:
    return LazyClient(lambda: session.client(service, config=AWS_CONFIG))  # type: ignore[call-overload]


@dataclass
class Parts:
    service: ScopeJobService
    checkpoints: DynamoCheckpointStore
    secrets: SecretsProvider
    dynamodb: DynamoDBClient
    triggers: IdempotentTriggers
    rate_limiter: FleetRateLimiter | None = None


class Wiring:
    """The service and the parts the handler and the tests reach, assembled on first use.

    Assembling makes the boto3 session and the Pleo client's HTTP client (its TLS context
    loads the CA bundle): tens of milliseconds that an import should not spend, and that a
    container that only fails to parse its event never needs."""

    def __init__(self, settings: Settings, assemble: Callable[[], Parts]) -> None:
        self.settings = settings
        self._assemble = assemble
        self._parts: Parts | None = None
        self._lock = threading.Lock()

    @property
    def assembled(self) -> bool:
        return self._parts is not None

    def parts(self) -> Parts:
        with self._lock:
            if self._parts is None:
                self._parts = self._assemble()
            return self._parts

    @property
    def service(self) -> ScopeJobService:
        return self.parts().service

    @contextmanager
    def injected(self, **ports: Any) -> Iterator[ScopeJobService]:
        """Meanwhile, every invocation runs a service with these ports (or `settings`,
        `observer`...) replaced: how tools and tests inject faults, crashes and slow parts.
        Yields that service; the one before is back afterwards. Nests."""
        parts = self.parts()
        with self._lock:
            before = parts.service
            parts.service = before.with_ports(**ports)
            injected = parts.service
        try:
            yield injected
        finally:
            with self._lock:
                parts.service = before

    @property
    def checkpoints(self) -> DynamoCheckpointStore:
        return self.parts().checkpoints

    @property
    def secrets(self) -> SecretsProvider:
        return self.parts().secrets

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.parts().dynamodb

    @property
    def triggers(self) -> IdempotentTriggers:
        return self.parts().triggers

    @contextmanager
    def releasing_rate_slots(self) -> Iterator[None]:
        """Around an invocation's step: at its end, give back the rate-budget slots held but
        not needed (they would lapse while the container waits for its next invocation)."""
        try:
            yield
        finally:
            self.release_rate_slots()

    def release_rate_slots(self) -> None:
        """Never fails the invocation: the slots then lapse, as before."""
        parts = self._parts
        if parts is None or parts.rate_limiter is None:
            return
        try:
            parts.rate_limiter.release()
        except Exception:
            logger.warning("could not give back unused rate-budget slots", exc_info=True)


def build(settings: Settings, *, clock: Clock | None = None) -> Wiring:
    """A wiring that assembles itself on first use (nothing made here)."""
    return Wiring(settings, lambda: _assemble(settings, clock))


def _assemble(settings: Settings, clock: Clock | None) -> Parts:
    clock = clock or SystemClock()
    session = boto3.session.Session()
    dynamodb = cast("DynamoDBClient", _client(session, "dynamodb"))
    # Powertools registers a hook on the client when the provider is made: made on first use.
    secrets = cast(
        "SecretsProvider",
        LazyClient(
            lambda: SecretsProvider(
                boto3_client=session.client("secretsmanager", config=AWS_CONFIG)
            )
        ),
    )
    checkpoints = DynamoCheckpointStore(dynamodb, settings.scope_table, clock)
    limiter = rate_limiter(settings, dynamodb, clock)
    registry = (
        DynamoTenantRegistry(dynamodb, settings.tenant_table) if settings.tenant_table else None
    )
    tenants = TenantResolver(registry, settings.tenant_secret_prefix)
    service = ScopeJobService(
        pleo=TenantPleo(tenants, TenantClients(settings, secrets, limiter, clock).connect),
        checkpoints=checkpoints,
        archive=S3ScopeArchive(cast("S3Client", _client(session, "s3")), settings.bucket),
        queue=SqsScopeQueue(cast("SQSClient", _client(session, "sqs")), settings.queue_url),
        ledger=DynamoPublishLedger(dynamodb, settings.scope_table, clock, checkpoints),
        hand_over=StepFunctionsHandOver(
            cast("SFNClient", _client(session, "stepfunctions")), settings.state_machine_arn
        ),
        settings=ServiceSettings(
            max_pages=settings.max_pages,
            safety_margin_seconds=settings.safety_margin_seconds,
            unit_size=settings.unit_size,
        ),
        clock=clock,
    )
    triggers = IdempotentTriggers(
        settings.idempotency_table, dynamodb, settings.idempotency_ttl_seconds
    )
    return Parts(service, checkpoints, secrets, dynamodb, triggers, limiter)


@dataclass
class TenantClients:
    """Makes the Pleo client of one tenant (TenantPleo keeps one per process and company):
    its credential as an httpx.Auth, its rate budget (the company's own limit, if its record
    sets one), the deployment's client settings."""

    settings: Settings
    secrets: SecretsProvider
    limiter: FleetRateLimiter | None
    clock: Clock
    _refresher: OAuthRefresher | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresher(self) -> OAuthRefresher:
        """The container's one OAuth refresher (from the function's environment: the
        registry, the tenant key, the token endpoint, the app's client secret), made when
        the first managed-OAuth tenant walks."""
        with self._lock:
            if self._refresher is None:
                self._refresher = tenant_tokens.build_refresher(os.environ)
            return self._refresher

    def connect(self, access: TenantAccess) -> PleoClient:
        limit = access.max_requests_per_minute
        slots = self.limiter.budget(access.company_id, limit) if self.limiter else None
        pleo = self.settings.pleo
        if limit is not None:  # paced by the client itself when there is no fleet budget
            pleo = replace(pleo, max_requests_per_minute=limit)
        return PleoClient(pleo, self.auth(access), clock=self.clock, slots=slots)

    def auth(self, access: TenantAccess) -> httpx.Auth:
        max_age = self.settings.secret_max_age_seconds
        credential = access.credential
        if credential is None:  # the default tenant: the deployment's own secret
            return CredentialAuth(
                SecretsManagerCredentialSource(self.secrets, self.settings.secret_arn, max_age)
            )
        company = access.company_id
        assert company is not None
        if isinstance(credential, ApiKeyCredential | AccessTokenCredential):
            source = SecretsManagerCredentialSource(
                self.secrets,
                credential.secret_arn,
                max_age,
                named_by=f"company {company}'s credential.secretArn in the tenant registry",
            )
            return CredentialAuth(KindCheckedSource(source, company, credential))
        return OAuthAuth(self.refresher(), company)  # a managed OAuth grant


def rate_limiter(
    settings: Settings, dynamodb: DynamoDBClient, clock: Clock
) -> FleetRateLimiter | None:
    """The fleet-wide budgets (None without RATE_BUDGET_TABLE_NAME: per-process pacing)."""
    if settings.rate_budget_table is None:
        return None
    return FleetRateLimiter(
        DynamoRateBudgetStore(dynamodb, settings.rate_budget_table),
        clock,
        settings.rate_limit_scope,
        float(settings.pleo.max_requests_per_minute or 500),
    )
