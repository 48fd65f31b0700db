"""Simulated Pleo companies: each holds its own credentials, and a credential reads only its
own company's jobs (another company's job is a 404, as Pleo answers: it does not exist for
that credential)."""

from __future__ import annotations

from dataclasses import dataclass, field

READ_SCOPE = "export-jobs:read"
DEFAULT_COMPANY_ID = "9f1c2c1e-0000-4000-8000-000000000001"
"""The company of every job that names none (the single-company simulator of old)."""


@dataclass
class SimCompany:
    id: str
    api_keys: dict[str, set[str]] = field(default_factory=dict)
    """Accepted API keys -> their scopes."""
    access_tokens: dict[str, set[str]] = field(default_factory=dict)
    """Accepted static access tokens -> their scopes (OAuth grants' tokens live in oauth.py)."""

    def revoke_static(self) -> None:
        self.api_keys.clear()
        self.access_tokens.clear()
