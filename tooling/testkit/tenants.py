"""What the OAuth tests build on the stack: refreshers, one per "process", over the template's
TenantTable and TenantKey (on the stack's moto server) and a simulator's token endpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.clock import Clock, SystemClock
from pleo_scope.oauth import OAuthRefresher, RefreshSettings
from pleo_scope.tenants import OAuthCredential, StoredToken, Tenant
from pleo_scope.token_endpoint import (
    ClientCredentials,
    ClientCredentialSource,
    HttpTokenEndpoint,
    StaticClientCredentials,
    TokenEndpointSettings,
)
from tooling.pleo_sim import PleoSimulator
from tooling.pleo_sim.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tooling.testkit.harness import Stack

SIM_CLIENT = ClientCredentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


def tenant_table(stack: Stack) -> str:
    """The template's TenantTable, as the local stack made it (tests use companies of their
    own, so they share it)."""
    return stack.aws.physical["TenantTable"]


def tenant_key(stack: Stack) -> str:
    """The template's TenantKey (its ARN), which seals the registry's tokens."""
    return stack.aws.physical["TenantKey.Arn"]


@dataclass
class ShiftedClock(SystemClock):
    """The system's clock, its wall time moved on by hand (every process sharing it sees the
    same time): a token's expiry comes without waiting for it."""

    shift_seconds: float = 0.0

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.shift_seconds)


@dataclass
class OAuthWorld:
    """One registry table and key; `process()` is what one Lambda container builds."""

    stack: Stack
    table: str
    key: str
    simulator: PleoSimulator
    base_url: str
    """The simulator's (the stack's, or one of a test's own)."""

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    def __post_init__(self) -> None:
        # boto3 clients are thread-safe and cost a quarter of a second each to make: the
        # "processes" share them (each keeps its own refresher: owner, cache, locks).
        self._dynamodb = self.stack.aws.client("dynamodb")
        self._kms = self.stack.aws.client("kms")

    def registry(self) -> DynamoTenantRegistry:
        return DynamoTenantRegistry(self._dynamodb, self.table)

    def cipher(self) -> KmsTokenCipher:
        return KmsTokenCipher(self._kms, self.key)

    def endpoint(
        self, credentials: ClientCredentialSource | None = None, read_timeout: float = 10.0
    ) -> HttpTokenEndpoint:
        """A read time-out is a lost answer (Pleo may have rotated), which the protocol turns
        into a reuse and relink_needed: so, a generous one, beyond the simulator's worst
        answer while fifty threads share its process and the GIL."""
        return HttpTokenEndpoint(
            TokenEndpointSettings(self.token_url, connect_timeout=1.0, read_timeout=read_timeout),
            credentials or StaticClientCredentials(SIM_CLIENT),
        )

    def process(self, clock: Clock | None = None, **settings: float) -> OAuthRefresher:
        return OAuthRefresher(
            self.registry(),
            self.cipher(),
            self.endpoint(),
            settings=RefreshSettings(**settings),
            clock=clock,
        )

    def onboard(self, access_lifetime: float = 600.0) -> str:
        """A company installs the app (the simulator's grant), and onboarding writes the
        design's record: the refresh token only, as plain text (refresh first)."""
        company = str(uuid.uuid4())
        issued = self.simulator.grant(company, access_lifetime=access_lifetime)
        credential = OAuthCredential(StoredToken(plain=issued.refresh_token))
        self.registry().put(Tenant(company, "active", credential))
        return company


def oauth_world(
    stack: Stack, simulator: PleoSimulator | None = None, base_url: str | None = None
) -> OAuthWorld:
    """On the stack's simulator, or on `simulator` served at `base_url`."""
    return OAuthWorld(
        stack,
        tenant_table(stack),
        tenant_key(stack),
        simulator or stack.simulator,
        base_url or stack.aws.function_env["PLEO_API_BASE_URL"],
    )
