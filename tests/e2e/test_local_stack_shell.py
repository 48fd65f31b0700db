"""`make local-stack` operated from a shell, as the runbook does: the stack in a process of
its own, `out/ops.env` sourced, every `pleo-scope-ops` command a process with no flag naming
the stack. The sample job comes back done from `retrigger --wait`, `status` says published,
`verify` passes; a larger job's running execution is stopped (by the SDK, as `aws
stepfunctions stop-execution` would), `status` says stuck, and re-sending its trigger
publishes it; a function that does not exist is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tooling.ops.cli import EXIT_STUCK
from tooling.ops.shell import Shell, local_stack_process
from tooling.testkit.samples import sample_job_id

SAMPLE_JOB_ID = sample_job_id()  # the job the local stack seeds
LARGE_JOB = str(uuid.uuid4())
# 8-second invocations of 10-item pages: the 45-item sample job is done in one; the larger
# job's 100 pages, 0.2 s each (a latency fault), need several, handed over to Step Functions.
STACK_ARGS = ["--items", "45", "--lambda-timeout", "8", "--page-size", "10"]


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    out = tmp_path_factory.mktemp("local-stack")
    with local_stack_process(out, [*STACK_ARGS, "--job", f"{LARGE_JOB}:1000"]) as opened:
        yield opened
    assert not opened.ops_env.exists()  # it named servers that are gone


def test_the_stack_says_how_to_use_it_and_its_env_names_every_resource(shell: Shell) -> None:
    printed = shell.log.read_text()
    assert f". {shell.ops_env}; set +a" in printed
    assert f"pleo-scope-ops retrigger {SAMPLE_JOB_ID} --wait" in printed
    names = dict(
        line.split("=", 1) for line in shell.ops_env.read_text().splitlines() if "=" in line
    )
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "SCOPE_TABLE_NAME",
        "SCOPE_BUCKET_NAME",
        "STATE_MACHINE_ARN",
        "SCOPE_JOB_FUNCTION_NAME",
        "EVENT_BUS_NAME",
        "EVENT_SOURCE",
        "TENANT_TABLE_NAME",
        "TENANT_KEY_ARN",
    ):
        assert names.get(name), name
        assert names[name] in printed or name.startswith("AWS_") or name.startswith("EVENT_")


@pytest.mark.timeout(300)
def test_an_operator_s_shell_session_on_the_local_stack(shell: Shell) -> None:
    # The sample job, done in one synchronous invocation.
    sent = shell.ops("retrigger", SAMPLE_JOB_ID, "--wait")
    assert sent.returncode == 0, sent.stderr
    assert "done: the scope is published" in sent.stdout
    status = shell.ops("status", SAMPLE_JOB_ID)
    assert status.returncode == 0, status.stderr
    assert "published" in status.stdout.splitlines()[1]
    verified = shell.ops("verify", SAMPLE_JOB_ID)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{SAMPLE_JOB_ID}: verified" in verified.stdout

    # A function that does not exist: refused, synchronously and asynchronously.
    for wait in (["--wait"], []):
        refused = shell.ops("retrigger", SAMPLE_JOB_ID, *wait, "--function", "no-such-function")
        assert refused.returncode == 1, refused.stdout
        assert "ResourceNotFoundException for function no-such-function" in refused.stderr

    # A larger job, slowed down through the simulator's admin API, triggered asynchronously
    # (as the rule does), handed over to Step Functions; its running execution is stopped.
    slowed = shell.slow_down(LARGE_JOB, 0.2)
    assert slowed.returncode == 0, slowed.stderr
    assert shell.ops("retrigger", LARGE_JOB).returncode == 0
    stopped = shell.stop_execution(shell.running_execution(LARGE_JOB))
    assert stopped.returncode == 0, stopped.stderr
    stuck = shell.ops("status", LARGE_JOB, "--watch", "--interval", "0.5")
    assert stuck.returncode == EXIT_STUCK, stuck.stdout + stuck.stderr
    assert f"re-send the trigger: pleo-scope-ops retrigger {LARGE_JOB}" in stuck.stdout

    # The recovery: re-send the trigger, follow it to published, verify.
    assert shell.ops("retrigger", LARGE_JOB).returncode == 0
    followed = shell.ops("status", LARGE_JOB, "--watch", "--interval", "0.5")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert shell.status(LARGE_JOB)["state"] == "published"
    verified = shell.ops("verify", LARGE_JOB)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The stack's log: one line per invocation, the stopped walk's and the recovery's.
    lines = [line for line in shell.log.read_text().splitlines() if LARGE_JOB in line]
    invocations = [line for line in lines if " trigger " in line or " loop " in line]
    assert sum(" async  trigger " in line for line in invocations) == 2
    assert any(" loop " in line for line in invocations)
    assert "done:" in invocations[-1]


def test_an_operator_onboards_a_company_from_the_shell(shell: Shell, tmp_path: Path) -> None:
    """What the runbook's tenant operations start with (`tooling.ops.runbook`, whose whole
    sequence its regeneration checks step by step): ops.env alone names the registry and
    key; the refresh token goes in on stdin and is never printed; the company's job walks."""
    company, job = str(uuid.uuid4()), str(uuid.uuid4())
    token_file = tmp_path / "refresh-token"
    assert shell.seed_job(job, 25, company).returncode == 0
    assert shell.install_app(company, token_file).returncode == 0
    token = token_file.read_text().strip()
    assert token.startswith("sim-rt-")
    added = shell.ops("tenant", "add", company, "--oauth", stdin=token_file)
    assert added.returncode == 0, added.stderr
    walked = shell.ops("retrigger", job, "--company", company, "--wait")
    assert walked.returncode == 0, walked.stderr
    assert "done: the scope is published" in walked.stdout
    shown = shell.ops("tenant", "show", company)
    assert shown.returncode == 0, shown.stderr
    assert "access token   present" in shown.stdout
    for printed in (added, walked, shown):
        assert token not in printed.stdout + printed.stderr
