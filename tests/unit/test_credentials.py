from __future__ import annotations

import base64
import json

import pytest

from pleo_scope.credentials import Credential, parse_secret
from pleo_scope.errors import InvalidSecret

SECRET = "pleo/api"


def test_api_key_is_basic_auth_with_empty_password() -> None:
    credential = parse_secret('{"apiKey": "k-123"}', SECRET)
    header = credential.authorization_header()
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")) == b"k-123:"


def test_access_token_is_bearer() -> None:
    assert parse_secret('{"accessToken": "t-9"}', SECRET).authorization_header() == "Bearer t-9"


@pytest.mark.parametrize(
    ("secret_string", "complaint"),
    [
        ("k-123-plain-text", "is not JSON"),
        ('["k-123"]', "is not a JSON object"),
        ('{"key": "k-123"}', "exactly one of"),
        ('{"apiKey": "k-123", "accessToken": "t-9"}', "exactly one of"),
        ('{"apiKey": ""}', "non-empty string"),
        ('{"accessToken": 123}', "non-empty string"),
    ],
)
def test_wrong_shapes_name_the_secret_but_never_its_value(
    secret_string: str, complaint: str
) -> None:
    with pytest.raises(InvalidSecret, match=complaint) as caught:
        parse_secret(secret_string, SECRET)
    assert SECRET in str(caught.value)
    assert "k-123" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_repr_hides_the_value() -> None:
    assert "k-123" not in repr(Credential("apiKey", "k-123"))


@pytest.mark.parametrize(
    ("secret_string", "header"),
    [
        ('{"accessToken": "t-9\\n"}', "Bearer t-9"),  # a copy-paste's trailing newline
        ('{"accessToken": "  t-9 \\r\\n\\t"}', "Bearer t-9"),
        ('{"apiKey": "\\u00a0k-123\\u3000"}', "Basic " + base64.b64encode(b"k-123:").decode()),
    ],
)
def test_surrounding_whitespace_is_stripped(secret_string: str, header: str) -> None:
    assert parse_secret(secret_string, SECRET).authorization_header() == header


@pytest.mark.parametrize(
    "value",
    [
        "k-1\n23",  # a line break inside
        "k-1\x0023",
        "k-123\x7f",
        "k-\u00e9123",  # non-ASCII letter
        "k-123\udc80",  # a lone surrogate
        "k-\u200b123",  # zero-width space
    ],
)
@pytest.mark.parametrize("kind", ["apiKey", "accessToken"])
def test_anything_else_outside_printable_ascii_is_invalid_secret(kind: str, value: str) -> None:
    secret_string = json.dumps({kind: value})
    complaint = f"`{kind}` holds characters outside printable ASCII"
    with pytest.raises(InvalidSecret, match=complaint) as caught:
        parse_secret(secret_string, SECRET)
    assert SECRET in str(caught.value)
    assert "k-" not in str(caught.value)
    assert "123" not in str(caught.value)
    assert caught.value.__cause__ is None
