"""Configuration from environment variables (set by template.yaml in AWS, by the local stack
locally). A missing or malformed variable is a `ConfigurationError` that names it, and so is
one that is not finite (`nan`, `inf`) or leaves an invocation no time to work."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pleo_scope.errors import ConfigurationError
from pleo_scope.pleo_client import ClientSettings, RetryPolicy
from pleo_scope.rate_budget import RATE_LIMIT_SCOPES, RateLimitScope
from pleo_scope.tenants_access import DEFAULT_SECRET_PREFIX


@dataclass(frozen=True, slots=True)
class Settings:
    pleo: ClientSettings
    secret_arn: str
    scope_table: str
    idempotency_table: str
    bucket: str
    queue_url: str
    state_machine_arn: str
    max_pages: int
    safety_margin_seconds: float
    secret_max_age_seconds: int
    idempotency_ttl_seconds: int
    unit_size: int
    rate_budget_table: str | None = None
    """The fleet-wide rate budget's table; None (empty): each process paces itself."""
    rate_limit_scope: RateLimitScope = "company"
    tenant_table: str | None = None
    """The tenant registry; None (empty): only the default tenant exists."""
    tenant_secret_prefix: str = DEFAULT_SECRET_PREFIX
    """What every tenant's secret name starts with (docs/security.md, "Tenants")."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        reader = _Reader(env)
        return cls(
            pleo=ClientSettings(
                base_url=reader.text("PLEO_API_BASE_URL"),
                page_size=reader.integer("PLEO_PAGE_SIZE", 100),
                connect_timeout=reader.number("PLEO_CONNECT_TIMEOUT_SECONDS", 3.0),
                read_timeout=reader.number("PLEO_READ_TIMEOUT_SECONDS", 10.0),
                retry=RetryPolicy(
                    max_attempts=reader.integer("PLEO_MAX_ATTEMPTS", 5),
                    max_retry_after=reader.number("PLEO_MAX_RETRY_AFTER_SECONDS", 60.0),
                ),
                max_requests_per_minute=reader.integer("PLEO_MAX_REQUESTS_PER_MINUTE", 500),
            ),
            secret_arn=reader.text("PLEO_API_SECRET_ARN"),
            scope_table=reader.text("SCOPE_TABLE_NAME"),
            idempotency_table=reader.text("IDEMPOTENCY_TABLE_NAME"),
            bucket=reader.text("SCOPE_BUCKET_NAME"),
            queue_url=reader.text("SCOPE_QUEUE_URL"),
            state_machine_arn=reader.text("STATE_MACHINE_ARN"),
            max_pages=reader.integer("PLEO_MAX_PAGES", 100_000),
            safety_margin_seconds=reader.number("SAFETY_MARGIN_SECONDS", 20.0),
            secret_max_age_seconds=reader.integer("SECRET_MAX_AGE_SECONDS", 300),
            idempotency_ttl_seconds=reader.integer("IDEMPOTENCY_TTL_SECONDS", 3600),
            unit_size=reader.integer("SCOPE_UNIT_SIZE", 100, most=100),
            rate_budget_table=reader.optional_text("RATE_BUDGET_TABLE_NAME"),
            rate_limit_scope=reader.rate_limit_scope("PLEO_RATE_LIMIT_SCOPE"),
            tenant_table=reader.optional_text("TENANT_TABLE_NAME"),
            tenant_secret_prefix=reader.secret_prefix("TENANT_SECRET_PREFIX"),
        )

    def require_time_to_work(self, invocation_seconds: float) -> None:
        """Stop an invocation at its start when these settings leave it no time to work.

        `invocation_seconds` is the time the invocation started with: the context's
        remaining time read first thing in the handler, i.e. the function's time-out (Lambda
        exposes it to the code no other way, and a copy in an environment variable could
        drift from the real one). With a safety margin at or above it, the walk would never
        fetch a page and the loop would continue forever; with a request's worst case at or
        above it, no request would ever start.
        """
        if self.safety_margin_seconds >= invocation_seconds:
            raise ConfigurationError(
                f"SAFETY_MARGIN_SECONDS={self.safety_margin_seconds:g} leaves no time to work:"
                f" it must be below the function's time-out (this invocation started with"
                f" {invocation_seconds:.1f} s); the margin is in seconds"
            )
        worst_case = self.pleo.worst_case_request_seconds
        if worst_case >= invocation_seconds:
            raise ConfigurationError(
                f"PLEO_CONNECT_TIMEOUT_SECONDS + PLEO_READ_TIMEOUT_SECONDS = {worst_case:g}"
                " leaves no time to work: it must be below the function's time-out (this"
                f" invocation started with {invocation_seconds:.1f} s)"
            )


@dataclass(frozen=True, slots=True)
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise ConfigurationError(f"environment variable {name} is not set")
        return value

    def optional_text(self, name: str) -> str | None:
        return self.env.get(name, "").strip() or None

    def secret_prefix(self, name: str) -> str:
        value = self.env.get(name, "").strip() or DEFAULT_SECRET_PREFIX
        if not value.endswith("/"):  # `prefix*` in IAM would match sibling names
            raise ConfigurationError(f"{name}={value!r} must end in '/'")
        return value

    def rate_limit_scope(self, name: str) -> RateLimitScope:
        value = self.env.get(name, "").strip() or "company"
        for scope in RATE_LIMIT_SCOPES:
            if value == scope:
                return scope
        raise ConfigurationError(f"{name}={value!r} must be one of {', '.join(RATE_LIMIT_SCOPES)}")

    def integer(self, name: str, default: int, most: int | None = None) -> int:
        value = self._numeric(name, default, int, "an integer", positive=True)
        if most is not None and value > most:
            raise ConfigurationError(f"{name}={str(value)!r} must be at most {most}")
        return value

    def number(self, name: str, default: float) -> float:
        return self._numeric(name, default, float, "a number", positive=False)

    def _numeric[N: (int, float)](
        self, name: str, default: N, convert: Callable[[str], N], kind: str, *, positive: bool
    ) -> N:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = convert(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not {kind}") from None
        if not math.isfinite(value):  # float() reads "nan", "inf" and "1e999"
            raise ConfigurationError(f"{name}={raw!r} is not a finite number")
        if value < 0 or (positive and value == 0):
            bound = "be positive" if positive else "not be negative"
            raise ConfigurationError(f"{name}={raw!r} must {bound}")
        return value
