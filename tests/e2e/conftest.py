"""End-to-end fixtures: the Pleo simulator over HTTP and moto's server, both real servers on
loopback, with the resources created from template.yaml; the handler imported once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pleo_scope.ports import NoObserver
from tooling.testkit.harness import Stack

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_JOB_ID = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"

__all__ = ["Stack", "load_event"]


def load_event(name: str, job_id: str) -> dict[str, Any]:
    """A sample event from events/, aimed at `job_id`."""
    text = (EVENTS / name).read_text(encoding="utf-8").replace(SAMPLE_JOB_ID, job_id)
    event: dict[str, Any] = json.loads(text)
    return event


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> Iterator[None]:
    stack.drain_queue()
    yield
    stack.app.app.service.observer = NoObserver()
    stack.simulator.api_keys = {"sim-api-key": {"export-jobs:read"}}
