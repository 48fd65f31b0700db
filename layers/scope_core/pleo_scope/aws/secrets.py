"""The Pleo credential from Secrets Manager, through Powertools Parameters (cached)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from pleo_scope.credentials import Credential, parse_secret
from pleo_scope.errors import ConfigurationError


def read_secret_string(
    provider: SecretsProvider,
    secret_arn: str,
    *,
    max_age_seconds: int,
    force_fetch: bool,
    named_by: str,
) -> str:
    """The secret's SecretString; a failure names the secret and `named_by` (where its ARN
    comes from: a setting, a tenant's record), never the value."""
    try:
        value = provider.get(secret_arn, max_age=max_age_seconds, force_fetch=force_fetch)
    except GetParameterError as error:
        # The provider's message is the AWS error (never the value); keep only its class.
        cause = type(error.__cause__).__name__ if error.__cause__ else "error"
        raise ConfigurationError(
            f"cannot read secret {secret_arn} ({cause}): check {named_by}"
            " and the function's secretsmanager:GetSecretValue permission"
        ) from None
    if not isinstance(value, str):
        raise ConfigurationError(f"secret {secret_arn} has no SecretString")
    return value


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
        value = read_secret_string(
            self._provider,
            self._secret_arn,
            max_age_seconds=self._max_age,
            force_fetch=force_fetch,
            named_by=self._named_by,
        )
        return parse_secret(value, self._secret_arn)
