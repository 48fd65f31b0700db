"""The event parser: the three shapes, job ids in any letter case, errors that name field
paths and never the rejected values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pleo_scope.contract import JobRef, LoopTicket
from pleo_scope.errors import InvalidEvent
from pleo_scope.events import ScopeRequest, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
JOB = "8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10"


def sample(name: str, job_id: str = JOB) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (EVENTS / name).read_text(encoding="utf-8").replace(JOB, job_id)
    )
    return event


@pytest.mark.parametrize(
    ("name", "ticket"),
    [
        ("eventbridge-export-job-claimed.json", None),
        ("step-functions-loop-state.json", LoopTicket(run_id=1, hand_over=1)),
        ("direct-invoke.json", None),
    ],
)
@pytest.mark.parametrize("job_id", [JOB, JOB.upper(), JOB[:13].upper() + JOB[13:]])
def test_each_sample_parses_with_the_job_id_in_lower_case(
    name: str, ticket: LoopTicket | None, job_id: str
) -> None:
    assert parse_event(sample(name, job_id)) == ScopeRequest(JobRef(JOB), ticket)


def test_the_loop_state_may_carry_the_rest_of_the_result() -> None:
    state = {**sample("step-functions-loop-state.json"), "done": False, "waitSeconds": 3}
    assert parse_event(state) == ScopeRequest(JobRef(JOB), LoopTicket(1, 1))


def test_the_loop_state_names_its_execution_and_needs_its_hand_over() -> None:
    arn = "arn:aws:states:eu-west-1:1:execution:m:scope-x-r1-h2-g3"
    state = {"jobId": JOB, "continuation": {"runId": 1, "handOver": 2}, "execution": arn}
    assert parse_event(state) == ScopeRequest(JobRef(JOB), LoopTicket(1, 2, arn))
    with pytest.raises(InvalidEvent, match=r"continuation\.handOver: Field required"):
        parse_event({"jobId": JOB, "continuation": {"runId": 1}})


@pytest.mark.parametrize(
    ("event", "complaints"),
    [
        (
            {"jobId": "SECRET-not-a-uuid"},
            ["invalid DirectRequest event: jobId: Input should be a UUID"],
        ),
        ({"jobId": f"{JOB}\n"}, ["jobId: Input should be a UUID"]),
        ({"jobId": f" {JOB}"}, ["jobId: Input should be a UUID"]),
        ({"jobId": 12345}, ["jobId: Input should be a UUID"]),
        ({"jobid": JOB}, ["jobId: Field required", "jobid: Extra inputs are not permitted"]),
        ({"jobId": JOB, "SECRET": 1}, ["SECRET: Extra inputs"]),  # a name, not a value
        ({}, ["jobId: Field required"]),
        (
            {"detail-type": "Export Job Claimed", "detail": {}},
            [
                "invalid JobClaimedEvent event",
                "version: Field required",
                "detail.jobId: Field required",
            ],
        ),
        (
            {**sample("eventbridge-export-job-claimed.json"), "detail-type": "SECRET"},
            ["detail-type: Input should be 'Export Job Claimed'"],
        ),
        (
            {**sample("eventbridge-export-job-claimed.json"), "detail": ["SECRET"]},
            ["detail: Input should be an object"],
        ),
        (
            {**sample("eventbridge-export-job-claimed.json"), "time": "SECRET"},
            ["time: Input should be an ISO 8601 date and time"],
        ),
        (
            {**sample("eventbridge-export-job-claimed.json"), "resources": ["a", 1]},
            ["resources: Input should be a list of strings"],
        ),
        (
            {"jobId": JOB, "continuation": {"runId": 0}},
            ["continuation.runId: Input should be an integer"],
        ),
        ({"jobId": JOB, "continuation": {"runId": True}}, ["continuation.runId"]),
        ({"jobId": JOB, "continuation": {"runId": "1"}}, ["continuation.runId"]),
        ({"jobId": JOB, "continuation": {}}, ["continuation.runId: Field required"]),
        ({"jobId": JOB, "continuation": "SECRET"}, ["continuation: Input should be an object"]),
        ({"continuation": {"runId": 1}}, ["invalid LoopState event: jobId: Field required"]),
    ],
)
def test_a_malformed_event_names_every_problem_and_no_value(
    event: dict[str, Any], complaints: list[str]
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(event)
    message = str(caught.value)
    for complaint in complaints:
        assert complaint in message
    if not any("SECRET" in complaint for complaint in complaints):  # SECRET is a value there
        assert "SECRET" not in message


@pytest.mark.parametrize("event", [[JOB], JOB, None, 3])
def test_an_event_that_is_not_an_object_is_invalid(event: object) -> None:
    with pytest.raises(InvalidEvent, match="event must be a JSON object"):
        parse_event(event)


def test_the_event_parser_loads_no_validation_library() -> None:
    # Issue 14: the layer no longer ships pydantic / the Powertools parser; a parser that
    # imported them would pass here in the dev venv and fail in Lambda. Loop-state fields
    # (e.g. a hand-over number) are added to `contract.Continuation.read` with the helpers of
    # `checks.FieldChecker`.
    code = (
        "import sys, pleo_scope.events; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' "
        "or m.startswith('aws_lambda_powertools.utilities.parser')); print(loaded)"
    )
    layer = Path(__file__).resolve().parents[2] / "layers" / "scope_core"
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(layer)},
    )
    assert done.stdout.strip() == "[]"
