"""What every boto3 client of the function shares: its retry and time-out configuration, made
lazily (`LazyClient`), with botocore's body logging kept quiet. Adapters and the wiring both
use it; it knows no adapter."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.config import Config

# Adaptive retries absorb DynamoDB and SQS throttling before the code sees it.
AWS_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=16,
)


# botocore logs whole request and response bodies at DEBUG (GetSecretValue's included,
# with the credential in it). Keep them quiet whatever level the function runs at.
for _noisy in ("botocore.parsers", "botocore.endpoint", "botocore.hooks"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


class LazyClient:
    """Stands in for a boto3 client (or what wraps one) and makes it on first attribute access,
    once, under a lock (the walk's threads may race for it). A client costs tens of
    milliseconds, and a container may never need some (Step Functions only on a hand-over)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._lazy_make = make
        self._lazy_client: Any = None
        self._lazy_lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._lazy_client is not None

    def __getattr__(self, name: str) -> Any:
        client = self._lazy_client
        if client is None:
            with self._lazy_lock:
                if self._lazy_client is None:
                    self._lazy_client = self._lazy_make()
                client = self._lazy_client
        return getattr(client, name)
