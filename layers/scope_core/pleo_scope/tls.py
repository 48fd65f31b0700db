"""One TLS context for every HTTP client of the process.

httpx builds a context per client (loading the CA bundle: about 20 ms of CPU), and a
container makes a Pleo client per tenant it serves; shared, a new tenant's client costs
nothing of the kind. Made on first use, not at import (the cold start stays as it was), with
httpx's own defaults (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
