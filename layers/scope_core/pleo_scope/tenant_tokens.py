"""A managed-OAuth tenant's access token for code beyond the walk (a consumer's data-layer
reads, its item-status PUTs), through the same refresh protocol as the function: so that the
integration has one refresher, not several, and one refresh in flight per tenant.

Build `TenantTokens` once per process, at module scope, as Powertools' utilities are built
(it holds each tenant's cached token and the per-tenant locks), then use it per request:

    import httpx
    from pleo_scope.tenant_tokens import TenantTokens

    tokens = TenantTokens()  # from this process's environment

    pleo = httpx.Client(base_url="https://external.pleo.io", auth=tokens.auth(company_id))
    pleo.put(f"/v3/export-jobs/{job_id}/items", json=...)  # a 401 refreshes, then re-sends

or, for a header built some other way, `grant = tokens.access_token(company_id)` and
`grant.authorization_header()`; after Pleo answers 401 to it,
`tokens.access_token(company_id, rejected=grant.version)`.

Its settings, from the environment (or `env`): TENANT_TABLE_NAME (the registry),
TENANT_KEY_ARN (the tokens' KMS key), PLEO_OAUTH_TOKEN_URL and PLEO_OAUTH_CLIENT_SECRET_ARN
(`{"clientId", "clientSecret"}`). The functions `tenant_auth`, `access_token` and `refresher`
are shortcuts over one shared `TenantTokens` per distinct set of those four settings (the
same settings, the same one; other settings, another). The consumer's role needs
dynamodb:GetItem and UpdateItem on the table, kms:Encrypt and kms:Decrypt on the key,
secretsmanager:GetSecretValue on the client secret. Tokens never reach a log line (DEBUG
included), an error or a metric. A grant Pleo refuses sets the tenant relink_needed and emits
the relink alarm's metric (EMF on stdout: docs/consumers.md says where that becomes a metric).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.metrics import EmfRelinkReports
from pleo_scope.aws.oauth_client import SecretsManagerClientCredentials
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.clock import Clock
from pleo_scope.errors import ConfigurationError
from pleo_scope.oauth import AccessGrant, OAuthRefresher, RefreshSettings, RelinkReports
from pleo_scope.oauth_auth import OAuthAuth, OAuthCredentialSource
from pleo_scope.token_endpoint import HttpTokenEndpoint, TokenEndpointSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "AccessGrant",
    "OAuthAppSettings",
    "OAuthAuth",
    "OAuthCredentialSource",
    "TenantTokens",
    "access_token",
    "build_refresher",
    "refresher",
    "shared",
    "tenant_auth",
]

CLIENT_SECRET_MAX_AGE_SECONDS = 300
AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=5
)

# botocore logs whole bodies at DEBUG (GetSecretValue's and KMS Decrypt's answers among
# them), httpcore request details: quiet whatever level the process runs at (as aws/clients.py).
for _noisy in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@dataclass(frozen=True, slots=True)
class OAuthAppSettings:
    """What a refresher reads and writes through: the settings that tell one apart."""

    table: str
    key_arn: str
    token_url: str
    client_secret_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OAuthAppSettings:
        return cls(
            _required(env, "TENANT_TABLE_NAME"),
            _required(env, "TENANT_KEY_ARN"),
            _required(env, "PLEO_OAUTH_TOKEN_URL"),
            _required(env, "PLEO_OAUTH_CLIENT_SECRET_ARN"),
        )


class TenantTokens:
    """Managed-OAuth tenants' access tokens, through one refresher made from `env` (default:
    the process's environment) when this is built. Build it once per process and share it;
    thread-safe. `reports`: where a tenant set relink_needed is reported (default: the relink
    alarm's metric as EMF on stdout; docs/consumers.md)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        session: boto3.session.Session | None = None,
        clock: Clock | None = None,
        settings: RefreshSettings | None = None,
        reports: RelinkReports | None = None,
    ) -> None:
        self.refresher = build_refresher(
            os.environ if env is None else env,
            session=session,
            clock=clock,
            settings=settings,
            reports=reports,
        )

    def auth(self, company_id: str) -> OAuthAuth:
        """An `httpx.Auth` for a synchronous httpx client sending as the tenant."""
        return OAuthAuth(self.refresher, _company(company_id))

    def access_token(self, company_id: str, rejected: int | None = None) -> AccessGrant:
        """The tenant's access token to send now; `rejected`: the version Pleo answered 401
        to."""
        return self.refresher.access_token(_company(company_id), rejected=rejected)


_shared: dict[OAuthAppSettings, TenantTokens] = {}
_lock = threading.Lock()


def build_refresher(
    env: Mapping[str, str] = os.environ,
    *,
    session: boto3.session.Session | None = None,
    clock: Clock | None = None,
    settings: RefreshSettings | None = None,
    reports: RelinkReports | None = None,
) -> OAuthRefresher:
    """A refresher over the registry, KMS and the token endpoint that `env` names (the
    function's wiring makes one per container; consumers get theirs through `TenantTokens`).
    A tenant it sets relink_needed is reported to `reports` (default: the relink alarm's
    metric, as EMF on stdout)."""
    app = OAuthAppSettings.from_env(env)
    session = session or boto3.session.Session()
    dynamodb: DynamoDBClient = session.client("dynamodb", config=AWS_CONFIG)
    kms: KMSClient = session.client("kms", config=AWS_CONFIG)
    secrets: SecretsManagerClient = session.client("secretsmanager", config=AWS_CONFIG)
    credentials = SecretsManagerClientCredentials(
        SecretsProvider(boto3_client=secrets), app.client_secret_arn, CLIENT_SECRET_MAX_AGE_SECONDS
    )
    return OAuthRefresher(
        DynamoTenantRegistry(dynamodb, app.table),
        KmsTokenCipher(kms, app.key_arn),
        HttpTokenEndpoint(TokenEndpointSettings(app.token_url), credentials, clock=clock),
        settings=settings,
        clock=clock,
        reports=reports or EmfRelinkReports(),
    )


def shared(env: Mapping[str, str] = os.environ) -> TenantTokens:
    """This process's `TenantTokens` for the settings `env` holds now, made on first use."""
    app = OAuthAppSettings.from_env(env)
    with _lock:
        tokens = _shared.get(app)
        if tokens is None:
            tokens = _shared[app] = TenantTokens(env)
        return tokens


def refresher(env: Mapping[str, str] = os.environ) -> OAuthRefresher:
    """This process's refresher for the settings `env` holds now."""
    return shared(env).refresher


def access_token(
    company_id: str, rejected: int | None = None, *, env: Mapping[str, str] = os.environ
) -> AccessGrant:
    """The tenant's access token to send now; `rejected`: the version Pleo answered 401 to."""
    return shared(env).access_token(company_id, rejected)


def tenant_auth(company_id: str, *, env: Mapping[str, str] = os.environ) -> OAuthAuth:
    """An `httpx.Auth` for a synchronous httpx client sending as the tenant."""
    return shared(env).auth(company_id)


def _company(company_id: str) -> str:
    return company_id.strip().lower()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: managed OAuth tenants need it")
    return value
