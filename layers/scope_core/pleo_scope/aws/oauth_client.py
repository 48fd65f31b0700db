"""The app's OAuth client credentials from Secrets Manager (PLEO_OAUTH_CLIENT_SECRET_ARN,
`{"clientId", "clientSecret"}`), through Powertools Parameters (cached)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from pleo_scope.aws.secrets import read_secret_string
from pleo_scope.token_endpoint import ClientCredentials, parse_client_secret


class SecretsManagerClientCredentials:
    def __init__(self, provider: SecretsProvider, secret_arn: str, max_age_seconds: int) -> None:
        self._provider = provider
        self._secret_arn = secret_arn
        self._max_age = max_age_seconds

    def get(self, *, force_fetch: bool = False) -> ClientCredentials:
        value = read_secret_string(
            self._provider,
            self._secret_arn,
            max_age_seconds=self._max_age,
            force_fetch=force_fetch,
            named_by="PLEO_OAUTH_CLIENT_SECRET_ARN",
        )
        return parse_client_secret(value, self._secret_arn)
