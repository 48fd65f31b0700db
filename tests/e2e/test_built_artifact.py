"""What `sam build` makes is what runs: the built function and layer (for this machine's
architecture), in an isolated interpreter whose path holds only them, the standard library
and the runtime's boto3 (tooling.testkit.lambda_like), scope a job on the local stack (the simulator
and moto's server, over HTTP).

The SAM CLI is `$SAM_CLI` (make test and CI set it) or installed into .sam-venv on first use:
this test never skips. The build is reused while its sources do not change.
"""

from __future__ import annotations

import json
import platform
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tooling.build.artifact import Built, cached_build, check_layer
from tooling.build.template import Template
from tooling.testkit.harness import Stack, reference_scope
from tooling.testkit.lambda_like import LambdaLike, lambda_like
from tooling.testkit.local_sam import HOST_ALIAS, LocalSam, invoke_command, local_sam
from tooling.testkit.local_stack import FUNCTION, LOCAL_ENV, REGION
from tooling.testkit.samples import EVENTS, SAMPLE_EVENT, load_event

ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@pytest.fixture(scope="module")
def built() -> Built:
    return cached_build(ARCHITECTURES[platform.machine().lower()])


@pytest.fixture(scope="module")
def runtime(built: Built) -> Iterator[LambdaLike]:
    with lambda_like(built) as tree:
        yield tree


def function_variables(stack: Stack) -> dict[str, str]:
    """The function's environment on the local stack, with what Lambda adds (region and
    credentials)."""
    return {**LOCAL_ENV, **stack.aws.function_env, "POWERTOOLS_METRICS_DISABLED": "true"}


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

    report = runtime.invoke(event, function_variables(stack), tmp_path)

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


# -- sam local invoke against the local stack (tooling.testkit.local_sam) --------------------------


def host_address() -> str:
    """A non-loopback address of this host: what Docker's host gateway leads a container to
    (servers bound on loopback only would refuse it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # UDP: nothing is sent
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), "this host has no non-loopback address"
    return address


@pytest.fixture(scope="module")
def sam_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSam]:
    env_file = tmp_path_factory.mktemp("sam-local") / "local-env.json"
    with local_sam(items=45, env_file=env_file) as local:
        yield local


def test_the_env_file_is_what_sam_applies_with_endpoints_a_container_reaches(
    sam_stack: LocalSam,
) -> None:
    text = sam_stack.env_file.read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document) == [FUNCTION]
    variables = document[FUNCTION]
    assert variables == sam_stack.variables
    # SAM overrides only the variables the template declares: nothing else would arrive.
    assert set(variables) == set(Template.load().environment(FUNCTION))
    assert variables["AWS_ENDPOINT_URL"] == f"http://{HOST_ALIAS}:{sam_stack.moto_port}"
    assert variables["PLEO_API_BASE_URL"] == f"http://{HOST_ALIAS}:{sam_stack.pleo_port}"
    assert "127.0.0.1" not in text
    assert "localhost" not in text
    # The sample events name the seeded, claimed job.
    for event_file in sorted(EVENTS.glob("*.json")):
        assert sam_stack.job.id in event_file.read_text(encoding="utf-8"), event_file.name
    assert sam_stack.job.status == "in_progress"
    assert invoke_command(sam_stack.env_file).startswith(
        f"sam local invoke {FUNCTION} -e events/eventbridge-export-job-claimed.json --env-vars "
    )


@pytest.mark.timeout(600)  # a first build downloads the wheels
def test_the_built_handler_scopes_the_sample_job_with_the_env_file_values(
    sam_stack: LocalSam, runtime: LambdaLike, tmp_path: Path
) -> None:
    # What a container gets, with host.docker.internal resolved as Docker's host gateway
    # would: to this host, not to its loopback.
    address = host_address()
    variables = {
        name: value.replace(f"//{HOST_ALIAS}:", f"//{address}:")
        for name, value in sam_stack.variables.items()
    }
    # What SAM adds: the region (--region) and credentials (moto takes any).
    lambda_variables = {
        **variables,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "defaultkey",
        "AWS_SECRET_ACCESS_KEY": "defaultsecret",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    event = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))

    report = runtime.invoke(event, lambda_variables, tmp_path)

    result = report["result"]
    expected = reference_scope([sam_stack.job.item_at(i) for i in range(sam_stack.job.item_count)])
    assert result["done"] is True
    assert result["jobId"] == sam_stack.job.id
    s3 = boto3.client(
        "s3",
        endpoint_url=variables["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    body = s3.get_object(Bucket=result["scope"]["bucket"], Key=result["scope"]["key"])["Body"]
    assert body.read() == expected
    sqs = boto3.client(
        "sqs",
        endpoint_url=variables["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    messages = sqs.receive_message(QueueUrl=variables["SCOPE_QUEUE_URL"], MaxNumberOfMessages=10)
    assert messages.get("Messages"), "nothing reached the queue"
