"""The app's OAuth client credentials from Secrets Manager (PLEO_OAUTH_CLIENT_SECRET_ARN,
`{"clientId", "clientSecret"}`), through Powertools Parameters (cached)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from pleo_scope.errors import ConfigurationError
from pleo_scope.token_endpoint import ClientCredentials, parse_client_secret


class SecretsManagerClientCredentials:
    def __init__(self, provider: SecretsProvider, secret_arn: str, max_age_seconds: int) -> None:
        self._provider = provider
        self._secret_arn = secret_arn
        self._max_age = max_age_seconds

    def get(self, *, force_fetch: bool = False) -> ClientCredentials:
        try:
            value = self._provider.get(
                self._secret_arn, max_age=self._max_age, force_fetch=force_fetch
            )
        except GetParameterError as error:
            cause = type(error.__cause__).__name__ if error.__cause__ else "error"
            raise ConfigurationError(
                f"cannot read secret {self._secret_arn} ({cause}): check"
                " PLEO_OAUTH_CLIENT_SECRET_ARN and the function's secretsmanager:GetSecretValue"
                " permission"
            ) from None
        if not isinstance(value, str):
            raise ConfigurationError(f"secret {self._secret_arn} has no SecretString")
        return parse_client_secret(value, self._secret_arn)
