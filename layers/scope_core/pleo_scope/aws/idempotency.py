"""Powertools' DynamoDB idempotency store, made on the first idempotent call, not at import.

Powertools' `DynamoDBPersistenceLayer` takes its client in `__init__` and registers a hook on
it there, so handing it even a lazy client would make the client at import. This subclass
runs that `__init__` in `configure`, which Powertools calls before every idempotent call and
before any use of the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DeferredDynamoDBPersistenceLayer(DynamoDBPersistenceLayer):
    def __init__(self, table_name: str, client: Callable[[], DynamoDBClient]) -> None:
        # Deliberately no super().__init__() here: it runs in configure().
        self._deferred_table = table_name
        self._deferred_client = client
        self._deferred_lock = threading.Lock()
        self._initialised = False

    def configure(
        self,
        config: IdempotencyConfig,
        function_name: str | None = None,
        key_prefix: str | None = None,
    ) -> None:
        if not self._initialised:
            with self._deferred_lock:
                if not self._initialised:
                    super().__init__(
                        table_name=self._deferred_table, boto3_client=self._deferred_client()
                    )
                    self._initialised = True
        super().configure(config, function_name, key_prefix)
