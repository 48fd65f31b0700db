"""A managed-OAuth tenant's access token for code beyond the walk (a consumer's data-layer
reads, its item-status PUTs), through the same refresh protocol as the function: so that the
integration has one refresher, not several, and one refresh in flight per tenant.

    import httpx
    from pleo_scope.tenant_tokens import tenant_auth

    pleo = httpx.Client(base_url="https://external.pleo.io", auth=tenant_auth(company_id))
    pleo.put(f"/v3/export-jobs/{job_id}/items", json=...)  # a 401 refreshes, then re-sends

or, for a header built some other way, `grant = access_token(company_id)` and
`grant.authorization_header()`; after Pleo answers 401 to it,
`access_token(company_id, rejected=grant.version)`.

Built once per process from the function's environment: TENANT_TABLE_NAME (the registry),
TENANT_KEY_ARN (the tokens' KMS key), PLEO_OAUTH_TOKEN_URL and PLEO_OAUTH_CLIENT_SECRET_ARN
(`{"clientId", "clientSecret"}`). The consumer's role needs dynamodb:GetItem and UpdateItem
on the table, kms:Encrypt and kms:Decrypt on the key, secretsmanager:GetSecretValue on the
client secret. Tokens never reach a log line (DEBUG included), an error or a metric.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.oauth_client import SecretsManagerClientCredentials
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.clock import Clock
from pleo_scope.errors import ConfigurationError
from pleo_scope.oauth import AccessGrant, OAuthRefresher, RefreshSettings
from pleo_scope.oauth_auth import OAuthAuth, OAuthCredentialSource
from pleo_scope.token_endpoint import HttpTokenEndpoint, TokenEndpointSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "AccessGrant",
    "OAuthAuth",
    "OAuthCredentialSource",
    "access_token",
    "build_refresher",
    "refresher",
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

_refresher: OAuthRefresher | None = None
_lock = threading.Lock()


def build_refresher(
    env: Mapping[str, str] = os.environ,
    *,
    session: boto3.session.Session | None = None,
    clock: Clock | None = None,
    settings: RefreshSettings | None = None,
) -> OAuthRefresher:
    """A refresher over the registry, KMS and the token endpoint that `env` names (the
    function's wiring makes one per container; consumers get theirs from `refresher()`)."""
    table, key, url, secret = (
        _required(env, name)
        for name in (
            "TENANT_TABLE_NAME",
            "TENANT_KEY_ARN",
            "PLEO_OAUTH_TOKEN_URL",
            "PLEO_OAUTH_CLIENT_SECRET_ARN",
        )
    )
    session = session or boto3.session.Session()
    dynamodb: DynamoDBClient = session.client("dynamodb", config=AWS_CONFIG)
    kms: KMSClient = session.client("kms", config=AWS_CONFIG)
    secrets: SecretsManagerClient = session.client("secretsmanager", config=AWS_CONFIG)
    credentials = SecretsManagerClientCredentials(
        SecretsProvider(boto3_client=secrets), secret, CLIENT_SECRET_MAX_AGE_SECONDS
    )
    return OAuthRefresher(
        DynamoTenantRegistry(dynamodb, table),
        KmsTokenCipher(kms, key),
        HttpTokenEndpoint(TokenEndpointSettings(url), credentials, clock=clock),
        settings=settings,
        clock=clock,
    )


def refresher(env: Mapping[str, str] = os.environ) -> OAuthRefresher:
    """This process's refresher, made on first use."""
    global _refresher
    with _lock:
        if _refresher is None:
            _refresher = build_refresher(env)
        return _refresher


def access_token(
    company_id: str, rejected: int | None = None, *, env: Mapping[str, str] = os.environ
) -> AccessGrant:
    """The tenant's access token to send now; `rejected`: the version Pleo answered 401 to."""
    return refresher(env).access_token(company_id.strip().lower(), rejected=rejected)


def tenant_auth(company_id: str, *, env: Mapping[str, str] = os.environ) -> OAuthAuth:
    """An `httpx.Auth` for a synchronous httpx client sending as the tenant."""
    return OAuthAuth(refresher(env), company_id.strip().lower())


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: managed OAuth tenants need it")
    return value
