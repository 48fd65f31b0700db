"""Fault injection goes through the wiring: a service with other ports for the time of a
`with` block, its steps built from those ports; the service itself never changes."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.invocation import ServiceSettings
from pleo_scope.service import ScopeJobService
from pleo_scope.settings import Settings
from pleo_scope.wiring import Parts, Wiring
from tests.fakes import (
    MemoryArchive,
    MemoryCheckpoints,
    MemoryLedger,
    MemoryPleo,
    MemoryQueue,
    RecordingHandOver,
)
from tests.support import FakeClock
from tooling.pleo_sim import SimJob

JOB_ID = "0f3a4b5c-6d7e-4f80-9a1b-2c3d4e5f6a7b"


def wiring_of(service: ScopeJobService) -> Wiring:
    unused: Any = None  # the AWS parts: not reached by these tests
    parts = Parts(service, unused, unused, unused, unused)
    return Wiring(cast("Settings", None), lambda: parts)


@pytest.fixture
def service() -> ScopeJobService:
    clock = FakeClock()
    pleo = MemoryPleo(page_size=20, clock=clock)
    pleo.add_job(SimJob(JOB_ID, generated_items=45))
    checkpoints = MemoryCheckpoints()
    return ScopeJobService(
        pleo=pleo,
        checkpoints=checkpoints,
        archive=MemoryArchive(),
        queue=MemoryQueue(),
        ledger=MemoryLedger(checkpoints),
        hand_over=RecordingHandOver(),
        settings=ServiceSettings(safety_margin_seconds=1.0),
        clock=clock,
    )


def test_an_injected_port_is_the_one_the_steps_use_and_only_meanwhile(
    service: ScopeJobService,
) -> None:
    app = wiring_of(service)
    other_queue = MemoryQueue()
    with app.injected(queue=other_queue) as injected:
        assert app.service is injected
        assert injected.queue is other_queue
        assert injected.pleo is service.pleo
        step, _ = app.service.run(JobRef(JOB_ID), Budget.unbounded(service.clock), "trigger")
        assert step.done
    assert app.service is service
    assert other_queue.messages  # the publisher was built from the injected queue
    assert not cast("MemoryQueue", service.queue).messages


def test_injections_nest_and_unwind(service: ScopeJobService) -> None:
    app = wiring_of(service)
    unit_size_3 = dataclasses.replace(service.settings, unit_size=3)
    with app.injected(settings=unit_size_3):
        queue = MemoryQueue()
        with app.injected(queue=queue):
            assert app.service.settings.unit_size == 3
            assert app.service.queue is queue
        assert app.service.settings.unit_size == 3
        assert app.service.queue is service.queue
    assert app.service is service


def test_a_service_cannot_be_changed_under_a_running_invocation(
    service: ScopeJobService,
) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        service.queue = MemoryQueue()  # type: ignore[misc]
