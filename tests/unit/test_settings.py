from __future__ import annotations

import pytest

from pleo_scope.errors import ConfigurationError
from pleo_scope.settings import Settings

REQUIRED = {
    "PLEO_API_BASE_URL": "https://external.pleo.io",
    "PLEO_API_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pleo",
    "SCOPE_TABLE_NAME": "scope",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "SCOPE_BUCKET_NAME": "bucket",
    "SCOPE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/scope.fifo",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:scope",
}


def test_defaults_and_overrides() -> None:
    settings = Settings.from_env(
        {**REQUIRED, "PLEO_PAGE_SIZE": "250", "PLEO_READ_TIMEOUT_SECONDS": "2.5"}
    )
    assert settings.pleo.page_size == 250
    assert settings.pleo.read_timeout == 2.5
    assert settings.pleo.connect_timeout == 3.0
    assert settings.max_pages == 100_000
    assert settings.pleo.retry.max_retry_after == 60.0
    assert settings.pleo.max_requests_per_minute == 500


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_variable_is_named(missing: str) -> None:
    env = {name: value for name, value in REQUIRED.items() if name != missing}
    with pytest.raises(ConfigurationError, match=f"{missing} is not set"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("PLEO_PAGE_SIZE", "many", "is not an integer"),
        ("PLEO_PAGE_SIZE", "0", "must be positive"),
        ("PLEO_MAX_PAGES", "-1", "must be positive"),
        ("PLEO_MAX_REQUESTS_PER_MINUTE", "0", "must be positive"),
        ("SAFETY_MARGIN_SECONDS", "soon", "is not a number"),
        ("PLEO_READ_TIMEOUT_SECONDS", "-2", "must not be negative"),
    ],
)
def test_a_malformed_value_is_named(name: str, value: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}='{value}' {complaint}"):
        Settings.from_env({**REQUIRED, name: value})
