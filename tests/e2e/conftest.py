"""End-to-end fixtures: each test starts with the session's stack (tests/conftest.py) as
the last left it, its queue drained, the observer and the simulator's keys reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tooling.testkit.harness import Stack


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> Iterator[None]:
    stack.drain_queue()
    yield
    stack.simulator.api_keys = {"sim-api-key": {"export-jobs:read"}}
