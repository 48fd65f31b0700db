"""The Pleo credential: parsed from the secret's JSON, rendered into an Authorization header,
and never rendered anywhere else (its repr hides the value)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pleo_scope.errors import InvalidSecret


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
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise InvalidSecret(f"secret {secret_name} is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidSecret(f"secret {secret_name} is not a JSON object")
    present = [key for key in ("apiKey", "accessToken") if key in document]
    if len(present) != 1:
        raise InvalidSecret(
            f"secret {secret_name} must hold exactly one of `apiKey` or `accessToken`"
            f" (it holds {len(present)} of them)"
        )
    kind = present[0]
    value = document[kind]
    if not isinstance(value, str) or not value.strip():
        raise InvalidSecret(f"secret {secret_name}: `{kind}` must be a non-empty string")
    # Surrounding whitespace is a copy-paste accident (a trailing newline); anything else an
    # HTTP header cannot carry as is would fail every request, so it is refused here.
    value = value.strip()
    if not all(" " <= char <= "~" for char in value):
        raise InvalidSecret(
            f"secret {secret_name}: `{kind}` holds characters outside printable ASCII"
            " (control characters or non-ASCII letters); store the credential exactly as Pleo"
            " issued it"
        )
    return Credential(kind="apiKey" if kind == "apiKey" else "accessToken", value=value)
