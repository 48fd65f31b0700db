"""The process's one TLS context: made once, verifying certificates and host names as
httpx's default would (a shared context must not weaken any client's TLS)."""

from __future__ import annotations

import ssl

import httpx

from pleo_scope.tls import shared_tls_context


def test_every_client_gets_the_same_verifying_context() -> None:
    context = shared_tls_context()
    assert context is shared_tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    default = httpx.create_ssl_context()
    assert context.minimum_version == default.minimum_version
    assert context.options == default.options
