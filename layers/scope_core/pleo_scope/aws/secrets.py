"""The Pleo credential from Secrets Manager, through Powertools Parameters (cached)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from pleo_scope.credentials import Credential, parse_secret
from pleo_scope.errors import ConfigurationError


class SecretsManagerCredentialSource:
    def __init__(
        self,
        provider: SecretsProvider,
        secret_arn: str,
        max_age_seconds: int,
        named_by: str = "PLEO_API_SECRET_ARN",
    ) -> None:
        """`named_by`: where the ARN comes from, for errors (a setting, a tenant's record)."""
        self._provider = provider
        self._secret_arn = secret_arn
        self._max_age = max_age_seconds
        self._named_by = named_by

    def get(self, *, force_fetch: bool = False) -> Credential:
        try:
            value = self._provider.get(
                self._secret_arn, max_age=self._max_age, force_fetch=force_fetch
            )
        except GetParameterError as error:
            # The provider's message is the AWS error (never the value); keep only its class.
            cause = type(error.__cause__).__name__ if error.__cause__ else "error"
            raise ConfigurationError(
                f"cannot read secret {self._secret_arn} ({cause}): check {self._named_by}"
                " and the function's secretsmanager:GetSecretValue permission"
            ) from None
        if not isinstance(value, str):
            raise ConfigurationError(f"secret {self._secret_arn} has no SecretString")
        return parse_secret(value, self._secret_arn)
