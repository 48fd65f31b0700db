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
    assert settings.unit_size == 100
    assert Settings.from_env({**REQUIRED, "SCOPE_UNIT_SIZE": "1"}).unit_size == 1
    assert (settings.rate_budget_table, settings.rate_limit_scope) == (None, "company")
    fleet = Settings.from_env(
        {**REQUIRED, "RATE_BUDGET_TABLE_NAME": "budgets", "PLEO_RATE_LIMIT_SCOPE": "client"}
    )
    assert (fleet.rate_budget_table, fleet.rate_limit_scope) == ("budgets", "client")


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
        ("SCOPE_UNIT_SIZE", "101", "must be at most 100"),
        ("SCOPE_UNIT_SIZE", "0", "must be positive"),
        ("PLEO_RATE_LIMIT_SCOPE", "token", "must be one of company, client"),
    ],
)
def test_a_malformed_value_is_named(name: str, value: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}='{value}' {complaint}"):
        Settings.from_env({**REQUIRED, name: value})


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
@pytest.mark.parametrize(
    "name",
    ["SAFETY_MARGIN_SECONDS", "PLEO_READ_TIMEOUT_SECONDS", "PLEO_MAX_RETRY_AFTER_SECONDS"],
)
def test_a_number_that_is_not_finite_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}='{value}' is not a finite number"):
        Settings.from_env({**REQUIRED, name: value})


@pytest.mark.parametrize("value", ["inf", "nan", "1e999"])
def test_an_integer_that_is_not_finite_is_named(value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"PLEO_PAGE_SIZE='{value}' is not an integer"):
        Settings.from_env({**REQUIRED, "PLEO_PAGE_SIZE": value})


@pytest.mark.parametrize(
    ("overrides", "invocation_seconds", "named"),
    [
        ({"SAFETY_MARGIN_SECONDS": "20000"}, 900.0, "SAFETY_MARGIN_SECONDS=20000"),  # ms?
        ({"SAFETY_MARGIN_SECONDS": "900"}, 900.0, "SAFETY_MARGIN_SECONDS=900"),  # at: none left
        ({}, 15.0, "SAFETY_MARGIN_SECONDS=20"),  # the default margin, a 15 s time-out
        ({"SAFETY_MARGIN_SECONDS": "1"}, 12.0, "PLEO_CONNECT_TIMEOUT_SECONDS"),  # 3 + 10 s
    ],
)
def test_settings_that_leave_no_time_to_work_are_named(
    overrides: dict[str, str], invocation_seconds: float, named: str
) -> None:
    settings = Settings.from_env({**REQUIRED, **overrides})
    with pytest.raises(ConfigurationError, match=f"{named}.* leaves no time to work"):
        settings.require_time_to_work(invocation_seconds)


def test_settings_that_leave_time_to_work_pass() -> None:
    Settings.from_env(REQUIRED).require_time_to_work(900.0)
    Settings.from_env({**REQUIRED, "SAFETY_MARGIN_SECONDS": "899"}).require_time_to_work(900.0)
