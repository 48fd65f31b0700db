"""Admission: per trigger of a batch, done (deleted), set aside at once (a bad body, a final
error), or reported as a batch item failure (anything transient); the time slice."""

from __future__ import annotations

from typing import Any

import pytest

from pleo_scope.admission import SLICE_MIN_PAGES, AdmissionSettings, admit
from pleo_scope.contract import JobRef
from pleo_scope.errors import (
    ConfigurationError,
    InvalidEvent,
    JobNotClaimed,
    PleoUnavailable,
    PublishFailed,
)
from pleo_scope.events import ScopeRequest
from pleo_scope.sqs_trigger import QueuedTrigger
from tests.support import FakeClock

JOB = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"


class KeptDeadLetters:
    def __init__(self, fail: bool = False) -> None:
        self.kept: list[tuple[str, str, str]] = []
        self.fail = fail

    def keep(self, trigger: QueuedTrigger, error_name: str, reason: str) -> None:
        if self.fail:
            raise PublishFailed("SQS refused")
        self.kept.append((trigger.message_id, error_name, reason))


A_JOB = ScopeRequest(JobRef(JOB))


def queued(message_id: str, request: ScopeRequest | None = A_JOB) -> QueuedTrigger:
    if request is None:
        return QueuedTrigger(message_id, "x", error=InvalidEvent("invalid: body: not JSON"))
    return QueuedTrigger(message_id, '{"jobId": "..."}', request)


def runner(outcomes: dict[str, Exception | None]) -> Any:
    def run(request: ScopeRequest) -> dict[str, Any]:
        error = outcomes.get(request.job_id)
        if error is not None:
            raise error
        return {"done": True}

    return run


def test_each_trigger_is_reported_on_its_own() -> None:
    jobs = [f"{JOB[:-1]}{n}" for n in range(4)]
    triggers = [queued(f"m{n}", ScopeRequest(JobRef(job))) for n, job in enumerate(jobs)]
    triggers.append(queued("m-bad", None))
    outcomes: dict[str, Exception | None] = {
        jobs[1]: PleoUnavailable("503 after the retries"),
        jobs[2]: JobNotClaimed(jobs[2], "pending"),
        jobs[3]: ConfigurationError("the setup"),
    }
    dead = KeptDeadLetters()
    answer = admit(triggers, runner(outcomes), dead)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [(m, name) for m, name, _ in dead.kept] == [
        ("m2", "JobNotClaimed"),
        ("m3", "ConfigurationError"),
        ("m-bad", "InvalidEvent"),
    ]
    assert "pending" in dead.kept[0][2]


def test_a_trigger_that_cannot_be_set_aside_comes_back() -> None:
    answer = admit([queued("m-bad", None)], runner({}), KeptDeadLetters(fail=True))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


def test_without_a_dead_letter_queue_the_redrive_policy_takes_poison_there() -> None:
    answer = admit([queued("m-bad", None)], runner({}), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


def test_the_slice_cuts_the_budget_to_the_slice_and_the_margin() -> None:
    clock = FakeClock()
    settings = AdmissionSettings(slice_seconds=10)
    assert settings.slice_budget(clock, 900, 20).remaining() == 30
    assert settings.slice_budget(clock, 12, 20).remaining() == 12  # never beyond the time-out


def test_the_walk_slice_is_the_slice_budget_and_its_minimum_of_pages() -> None:
    clock = FakeClock()
    walk_slice = AdmissionSettings(slice_seconds=3).walk_slice(clock, 900, 20)
    assert walk_slice.budget.remaining() == 23
    assert walk_slice.min_pages == SLICE_MIN_PAGES == 10


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "ten"])
def test_a_bad_slice_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="ADMISSION_SLICE_SECONDS"):
        AdmissionSettings.from_env({"ADMISSION_SLICE_SECONDS": raw})


def test_settings_from_the_environment() -> None:
    settings = AdmissionSettings.from_env(
        {"ADMISSION_SLICE_SECONDS": "4.5", "ADMISSION_DEAD_LETTER_QUEUE_URL": "https://q"}
    )
    assert settings == AdmissionSettings(4.5, "https://q")
    assert AdmissionSettings.from_env({}) == AdmissionSettings()
