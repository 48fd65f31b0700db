"""The Pleo credential: parsed from the secret's JSON, rendered into an Authorization header,
and never rendered anywhere else (its repr hides the value)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pleo_scope.errors import InvalidSecret
from pleo_scope.secret_fields import header_field, secret_document


@dataclass(frozen=True, slots=True)
class Credential:
    kind: Literal["apiKey", "accessToken"]
    value: str = field(repr=False)

    def authorization_header(self) -> str:
        if self.kind == "accessToken":
            return f"Bearer {self.value}"
        # API key: HTTP Basic with the key as user name and an empty password.
        return "Basic " + base64.b64encode(f"{self.value}:".encode()).decode("ascii")


class CredentialSource(Protocol):
    def get(self, *, force_fetch: bool = False) -> Credential:
        """The current credential; `force_fetch` bypasses any cache (after a 401)."""
        ...


@dataclass(slots=True)
class StaticCredential:
    """A credential known up front (tests, the demo's CLI)."""

    credential: Credential

    def get(self, *, force_fetch: bool = False) -> Credential:
        return self.credential


def parse_secret(secret_string: str, secret_name: str) -> Credential:
    """`{"apiKey": "..."}` or `{"accessToken": "..."}`, the value stripped of surrounding
    whitespace and otherwise printable ASCII; anything else names the secret, never its value."""
    document = secret_document(secret_string, secret_name)
    present = [key for key in ("apiKey", "accessToken") if key in document]
    if len(present) != 1:
        raise InvalidSecret(
            f"secret {secret_name} must hold exactly one of `apiKey` or `accessToken`"
            f" (it holds {len(present)} of them)"
        )
    kind = present[0]
    value = header_field(document, kind, secret_name)
    return Credential(kind="apiKey" if kind == "apiKey" else "accessToken", value=value)
