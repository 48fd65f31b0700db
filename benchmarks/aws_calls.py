"""A botocore `before-send` hook for benchmarks (never in the product): counts every AWS call
by service and operation, and can make each one wait first (injected latency)."""

from __future__ import annotations

import gc
import time
from collections import Counter
from typing import Any

import botocore.client
import botocore.session

UNIQUE_ID = "benchmarks-aws-calls"


class AwsCalls:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        """"service.Operation" -> calls."""

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> None:
        self.calls[event_name.removeprefix("before-send.")] += 1
        if self.latency:
            time.sleep(self.latency)

    def by_service(self) -> Counter[str]:
        services: Counter[str] = Counter()
        for name, count in self.calls.items():
            services[name.split(".")[0]] += count
        return services

    def install(self, *, existing: bool) -> None:
        """On every client made from now on (the function makes its clients on first use)
        and, with `existing`, on every client that exists already. Once per process."""
        if existing:
            for client in [
                o for o in gc.get_objects() if isinstance(o, botocore.client.BaseClient)
            ]:
                self._register(client)
        original = botocore.session.Session.create_client

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            self._register(client)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign,assignment]

    def _register(self, client: Any) -> None:
        client.meta.events.register("before-send", self, unique_id=UNIQUE_ID)
