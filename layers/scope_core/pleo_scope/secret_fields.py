"""The fields of a Secrets Manager secret that hold a credential sent in an HTTP header (the
Pleo credential's `apiKey`/`accessToken`, the OAuth app's `clientId`/`clientSecret`): read
and checked alike, every error naming the secret and the field, never a value."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pleo_scope.errors import InvalidSecret


def secret_document(secret_string: str, secret_name: str) -> Mapping[str, object]:
    """The secret's JSON object."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        raise InvalidSecret(f"secret {secret_name} is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidSecret(f"secret {secret_name} is not a JSON object")
    return document


def header_field(document: Mapping[str, object], name: str, secret_name: str) -> str:
    """`document[name]`: a non-empty string, stripped of surrounding whitespace."""
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidSecret(f"secret {secret_name}: `{name}` must be a non-empty string")
    # Surrounding whitespace is a copy-paste accident (a trailing newline); anything else an
    # HTTP header cannot carry as is would fail every request, so it is refused here.
    value = value.strip()
    if not all(" " <= char <= "~" for char in value):
        raise InvalidSecret(
            f"secret {secret_name}: `{name}` holds characters outside printable ASCII"
            " (control characters or non-ASCII letters); store the credential exactly as Pleo"
            " issued it"
        )
    return value
