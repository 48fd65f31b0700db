"""The OAuth app's client credentials (PLEO_OAUTH_CLIENT_SECRET_ARN's secret): the same field
rules as the Pleo credential's (pleo_scope/secret_fields.py), and a client id HTTP Basic can
carry; every refusal names the secret and the field, never a value."""

from __future__ import annotations

import base64
import json

import pytest

from pleo_scope.errors import InvalidSecret
from pleo_scope.token_endpoint import ClientCredentials, parse_client_secret

SECRET = "pleo/oauth-client"


def test_both_fields_stripped_and_sent_as_http_basic() -> None:
    credentials = parse_client_secret(
        json.dumps({"clientId": " app-1\n", "clientSecret": "s3cr-et\n"}), SECRET
    )
    assert credentials == ClientCredentials("app-1", "s3cr-et")
    header = credentials.authorization_header()
    assert base64.b64decode(header.removeprefix("Basic ")) == b"app-1:s3cr-et"
    assert "s3cr-et" not in repr(credentials)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("app-1", "is not JSON"),
        ('["app-1", "s3cr-et"]', "is not a JSON object"),
        (json.dumps({"clientId": "app-1"}), "`clientSecret` must be a non-empty string"),
        (json.dumps({"clientId": " ", "clientSecret": "s3cr-et"}), "`clientId` must be a non"),
        (json.dumps({"clientId": "app-1", "clientSecret": 7}), "`clientSecret` must be a non"),
        (
            json.dumps({"clientId": "app-1", "clientSecret": "s3cr\u00e9-et"}),
            "`clientSecret` holds characters outside printable ASCII",
        ),
        (
            json.dumps({"clientId": "app\n-1", "clientSecret": "s3cr-et"}),
            "`clientId` holds characters outside printable ASCII",
        ),
        (json.dumps({"clientId": "app:1", "clientSecret": "s3cr-et"}), "`clientId` holds a colon"),
    ],
)
def test_refusals_name_the_secret_and_field_never_a_value(document: str, complaint: str) -> None:
    with pytest.raises(InvalidSecret, match=complaint) as caught:
        parse_client_secret(document, SECRET)
    message = str(caught.value)
    assert SECRET in message
    for value in ("app-1", "app:1", "s3cr"):
        assert value not in message
    assert caught.value.__cause__ is None
