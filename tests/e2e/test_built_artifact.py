"""What `sam build` makes is what runs: the built function and layer (for this machine's
architecture), in an isolated interpreter whose path holds only them, the standard library
and the runtime's boto3 (tooling.lambda_like), scope a job on the local stack (the simulator
and moto's server, over HTTP).

The SAM CLI is `$SAM_CLI` (make test and CI set it) or installed into .sam-venv on first use:
this test never skips. The build is reused while its sources do not change.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, load_event
from tooling.artifact import Built, cached_build, check_layer
from tooling.lambda_like import LambdaLike, lambda_like
from tooling.local_stack import LOCAL_ENV

ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@pytest.fixture(scope="module")
def built() -> Built:
    return cached_build(ARCHITECTURES[platform.machine().lower()])


@pytest.fixture(scope="module")
def runtime(built: Built) -> Iterator[LambdaLike]:
    with lambda_like(built) as tree:
        yield tree


def invoke(runtime: LambdaLike, stack: Stack, event: dict[str, Any], tmp: Path) -> dict[str, Any]:
    event_file = tmp / "event.json"
    event_file.write_text(json.dumps(event), encoding="utf-8")
    variables = {
        **LOCAL_ENV,
        **stack.aws.function_env,
        "AWS_ENDPOINT_URL": stack.aws.endpoint,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, the project's bootstrap
        runtime.command("invoke", "app.lambda_handler", str(event_file), "--timeout", "60"),
        env=LambdaLike.environment(variables),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def queued_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items the messages carry (one per message, or a unit's `items`)."""
    return [item for m in messages for item in m.get("items", [m])]


def test_the_layer_is_lean_and_compiled(built: Built) -> None:
    report = check_layer(built)
    assert report.problems == []
    assert report.modules > 100  # the core and its dependencies, each with its pyc


@pytest.mark.timeout(600)  # a first build downloads the wheels
def test_the_built_artifact_scopes_a_job_on_the_local_stack(
    stack: Stack, built: Built, runtime: LambdaLike, tmp_path: Path
) -> None:
    job = stack.new_job(items=45)
    event = load_event("eventbridge-export-job-claimed.json", job.id)

    report = invoke(runtime, stack, event, tmp_path)

    # Everything came from the three folders and the standard library, each from its own.
    assert report["foreign"] == []
    origins = report["origins"]
    assert origins["app"].startswith(str(runtime.task))
    for module in ("pleo_scope", "httpx", "aws_lambda_powertools"):
        assert origins[module].startswith(str(runtime.opt / "python")), module
    for module in ("boto3", "botocore"):
        assert origins[module].startswith(str(runtime.runtime)), module
    # The published scope and queue are the job's.
    expected = stack.expected_scope(job)
    lines = [json.loads(line) for line in expected.splitlines()]
    result = report["result"]
    assert result["done"] is True
    assert result["itemsInScope"] == len(lines) > 0
    assert stack.scope_of(job.id) == expected
    items = queued_items([m for m in stack.drain_queue() if m["jobId"] == job.id])
    assert [i["accountingEntryId"] for i in items] == [i["accountingEntryId"] for i in lines]
