"""The wire shapes: each read back as written, execution names within Step Functions' limit,
and the ASL moving the fields the contract writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pleo_scope.contract import (
    MAX_EXECUTION_NAME,
    Continuation,
    Continuing,
    Done,
    ExecutionName,
    HandedOver,
    JobRef,
    LoopInput,
    ScopeLocation,
    StepResult,
    read_step_result,
    wait_for_step_functions,
)
from pleo_scope.errors import InvalidEvent

ASL = Path(__file__).parents[2] / "statemachine" / "scope_job.asl.json"
JOB = JobRef("8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10")
TENANT_JOB = JobRef(JOB.job_id, "9f1c2c1e-0000-4000-8000-000000000001")


def states() -> dict[str, Any]:
    # The ${...} substitutions are numbers or quoted ARNs: any number keeps it JSON.
    text = re.sub(r"\$\{\w+\}", "1", ASL.read_text(encoding="utf-8"))
    machine: dict[str, Any] = json.loads(text)
    return machine["States"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("asked", "waited"),
    [
        (0.0, 0),
        (-3.0, 0),
        (float("nan"), 86_400),
        (0.2, 1),
        (59.0, 59),
        (1e12, 86_400),
        (float("inf"), 86_400),
    ],
)
def test_waits_for_step_functions_are_whole_seconds_up_to_a_day(asked: float, waited: int) -> None:
    assert wait_for_step_functions(asked) == waited


@pytest.mark.parametrize("job", [JOB, TENANT_JOB])
def test_step_results_read_back_as_written(job: JobRef) -> None:
    location = ScopeLocation("bucket", "export-jobs/x/scope.jsonl", "export-jobs/x/scope.json")
    results: list[StepResult] = [
        Done(job, 3, 120, 7, location),
        Continuing(Continuation(job, 2, 1), "walking", 4, 0, 60),
        Continuing(Continuation(job, 2, 1), "scoped", 9, 300, 0, HandedOver("arn:x", True)),
    ]
    for result in results:
        payload = json.loads(json.dumps(result.payload()))
        assert read_step_result(payload) == result


def test_a_continuing_result_is_accepted_back_as_the_next_input() -> None:
    result = Continuing(Continuation(TENANT_JOB, 2, 5), "walked", 9, 0, 0, HandedOver("arn:x"))
    assert Continuation.read(result.payload()) == result.continuation
    given = {**result.continuation.payload(), "execution": "arn:aws:states:x:execution:m:n"}
    assert Continuation.read(given).ticket.execution_arn == "arn:aws:states:x:execution:m:n"


def test_the_loop_state_is_read_field_by_field() -> None:
    with pytest.raises(InvalidEvent) as raised:
        Continuation.read(
            {"jobId": "nope", "companyId": 7, "continuation": {"runId": 0}, "execution": 1}
        )
    message = str(raised.value)
    for problem in (
        "jobId: Input should be a UUID",
        "companyId: Input should be a UUID",
        "continuation.runId: Input should be an integer of at least 1",
        "continuation.handOver: Field required",
        "execution: Input should be a string",
    ):
        assert problem in message
    upper = {"jobId": JOB.job_id.upper(), "continuation": {"runId": 1, "handOver": 1}}
    assert Continuation.read(upper).job == JOB  # no companyId: the default tenant


def test_execution_names_fit_step_functions_with_a_company_and_the_largest_numbers() -> None:
    largest = ExecutionName(TENANT_JOB, 10**7 - 1, 10**7 - 1, 10**8 - 1)
    assert len(str(largest)) == MAX_EXECUTION_NAME
    assert str(ExecutionName(JOB, 1, 2)) == f"scope-{JOB.job_id}-r1-h2-g0"
    assert str(ExecutionName(TENANT_JOB, 1, 2, 3)) == f"scope-{JOB.job_id}-c9f1c2c1e-r1-h2-g3"
    with pytest.raises(ValueError, match="no execution name"):
        ExecutionName(TENANT_JOB, 10**7, 1)


def test_execution_names_are_unique_per_run_hand_over_and_generation() -> None:
    names = {
        str(ExecutionName(job, run, hand_over, generation))
        for job in (JOB, TENANT_JOB)
        for run in (1, 2, 11, 12)
        for hand_over in (1, 2, 11, 12)
        for generation in (0, 1, 10, 11)
    }
    assert len(names) == 2 * 4 * 4 * 4


def test_the_following_generation_is_named_from_a_name_or_an_arn() -> None:
    name = ExecutionName(TENANT_JOB, 1, 2, 9)
    arn = f"arn:aws:states:eu-west-1:1:execution:machine:{name}"
    assert ExecutionName.following(arn) == arn.removesuffix("-g9") + "-g10"
    assert ExecutionName.following(str(name)) == str(name.next_generation())
    assert ExecutionName.following("hand-started") is None


def test_the_asl_names_a_continue_as_new_as_the_contract_does() -> None:
    loop = LoopInput(Continuation(TENANT_JOB, 4, 2), wait_seconds=30).payload()
    expression = states()["ContinueAsNewExecution"]["Parameters"]["Name.$"]
    match = re.fullmatch(
        r"States\.Format\('(.*)', \$\.loop\.namePrefix, "
        r"States\.MathAdd\(\$\.loop\.generation, 1\)\)",
        expression,
    )
    assert match is not None, expression
    named = match.group(1).format(loop["loop"]["namePrefix"], loop["loop"]["generation"] + 1)
    assert named == str(ExecutionName(TENANT_JOB, 4, 2, 1))


def test_the_asl_moves_the_loop_state_the_contract_writes() -> None:
    machine = states()
    loop = LoopInput(Continuation(TENANT_JOB, 4, 2), wait_seconds=30).payload()
    # The function's input: the continuation's fields, and the invoking execution.
    payload = machine["ScopeJob"]["Parameters"]["Payload"]
    given = {name.removesuffix(".$") for name in payload}
    assert given == {*Continuation(TENANT_JOB, 4, 2).payload(), "execution"}
    # Each iteration and a continue-as-new carry the state machine input's every field.
    next_iteration = machine["NextIteration"]["Parameters"]
    continued = machine["ContinueAsNewExecution"]["Parameters"]["Input"]
    for carried in (next_iteration, continued):
        names = {name.removesuffix(".$") for name in carried}
        assert names - {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"} == set(loop)
        assert {name.removesuffix(".$") for name in carried["loop"]} == set(loop["loop"])
    # The next iteration's input comes from the step's result.
    result = Continuing(Continuation(TENANT_JOB, 4, 2), "walking", 1, 0, 5).payload()
    for name, path in next_iteration.items():
        if name != "loop":
            assert path.removeprefix("$.step.output.") in result
