"""`make local-stack`: the whole application on the stand-ins, kept up until Ctrl-C.

The Pleo simulator and moto's server, the template's resources in moto, a claimed job whose id
is the sample events' id, and the ScopeJob function itself: moto's Lambda API runs it in this
process (synchronously, or in the background for an asynchronous invocation), the state
machine's tasks call it through that API, and the template's rule on the event bus delivers
"Export Job Claimed" to it. One log line per invocation.

    python -m tooling.testkit.local_sam [--items 2500] [--job ID:ITEMS] [--lambda-timeout 900]

It writes `out/ops.env` (endpoint, region, dummy credentials, the resources' names) for the
operator CLI:

    set -a; . out/ops.env; set +a
    pleo-scope-ops retrigger 8eb648ab-1f6e-4f4c-9a0e-0c5b9d2c7a10 --wait

and `out/local-env.json` for `sam local invoke` (Docker needed; `sam build` first), whose
endpoints name `host.docker.internal`:

    sam local invoke ScopeJobFunction -e events/eventbridge-export-job-claimed.json \\
        --env-vars out/local-env.json --region eu-west-1 \\
        --add-host host.docker.internal:host-gateway

SAM applies only the variables the template declares (AWS_ENDPOINT_URL is declared, empty,
for this), and sets the region and credentials itself: hence `--region` (the stack's
resources are in eu-west-1; moto takes any credentials). `--add-host` maps the name on
Linux; Docker Desktop maps it already. Both servers bind all interfaces for that (a
container reaches the host through Docker's host gateway); `--bind 127.0.0.1` keeps them on
loopback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from moto.server import ThreadedMotoServer

from tooling.build.template import TEMPLATE, Template
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.testkit.admission_poller import maximum_concurrency
from tooling.testkit.local_function import serve_function, wait_forever
from tooling.testkit.local_stack import (
    FUNCTION,
    LOCAL_ENV,
    REGION,
    LocalStack,
    free_port,
    local_stack,
    short_invocation_settings,
)
from tooling.testkit.samples import SAMPLE_EVENT, sample_job_id

HOST_ALIAS = "host.docker.internal"
# moto's state is per process: a name of its own keeps it apart from another local stack.
STACK = "pleo-export-scope-sam-local"
OUT = TEMPLATE.parent / "out"
ENV_FILE = OUT / "local-env.json"
OPS_ENV = OUT / "ops.env"
LAMBDA_TIMEOUT = float(Template.load().document["Globals"]["Function"]["Timeout"])
# The function's own lines, one per invocation, are the log; its INFO lines and metrics
# (JSON, several per invocation) are left to --function-logs.
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


def shown_path(path: Path) -> Path:
    try:
        return path.resolve().relative_to(TEMPLATE.parent)
    except ValueError:
        return path


def invoke_command(env_file: Path) -> str:
    return (
        f"sam local invoke {FUNCTION} -e {SAMPLE_EVENT.relative_to(TEMPLATE.parent)}"
        f" --env-vars {shown_path(env_file)} --region {REGION}"
        f" --add-host {HOST_ALIAS}:host-gateway"
    )


def source_command(ops_env: Path) -> str:
    return f"set -a; . {shown_path(ops_env)}; set +a"


@dataclass
class LocalSam:
    simulator: PleoSimulator
    aws: LocalStack
    job: SimJob
    pleo_port: int
    moto_port: int
    env_file: Path
    variables: dict[str, str]
    """What the container gets: the function's environment, endpoints on HOST_ALIAS."""
    pleo_url: str = ""
    """Where the function (in this process) and the operator reach the simulator."""
    jobs: list[SimJob] = field(default_factory=list)
    """Every seeded job, the sample one first."""


def container_variables(
    aws: LocalStack, ports: tuple[int, ...], alias: str, variables: dict[str, str] | None = None
) -> dict[str, str]:
    """The function's variables as the template declares them, resolved, with every local
    endpoint (on one of `ports`) named by `alias` instead of the loopback address."""
    declared = Template.load().environment(FUNCTION)
    resolved: dict[str, str] = {}
    for name, value in (variables or aws.function_env).items():
        if name not in declared:
            continue
        for port in ports:
            for loopback in ("127.0.0.1", "localhost"):
                value = value.replace(f"//{loopback}:{port}", f"//{alias}:{port}")
        resolved[name] = value
    resolved["AWS_ENDPOINT_URL"] = f"http://{alias}:{ports[0]}"
    return resolved


def ops_variables(aws: LocalStack, pleo_url: str) -> dict[str, str]:
    """What `pleo-scope-ops` (and boto3, and the aws CLI) read to reach this stack."""
    parameters = Template.load().document["Parameters"]
    physical = aws.physical
    return {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_ENV["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_ENV["AWS_SECRET_ACCESS_KEY"],
        "SCOPE_TABLE_NAME": physical["ScopeTable"],
        "SCOPE_BUCKET_NAME": physical["ScopeBucket"],
        "SCOPE_QUEUE_URL": physical["ScopeQueue"],
        "STATE_MACHINE_ARN": physical["ScopeJobStateMachine"],
        "SCOPE_JOB_FUNCTION_NAME": physical[FUNCTION],
        "EVENT_BUS_NAME": str(parameters["EventBusName"]["Default"]),
        "EVENT_SOURCE": str(parameters["EventSource"]["Default"]),
        # The tenant registry and the key its OAuth tokens are sealed with (`tenant ...`).
        "TENANT_TABLE_NAME": physical["TenantTable"],
        "TENANT_KEY_ARN": physical["TenantKey.Arn"],
        # The simulator's admin API (tooling/pleo_sim/server.py): seed jobs, inject faults.
        "PLEO_SIM_URL": pleo_url,
    }


def write_ops_env(path: Path, variables: dict[str, str]) -> None:
    lines = [
        "# The local stack (make local-stack), for pleo-scope-ops, boto3 and the aws CLI.",
        f"# Written while it runs; use: {source_command(path)}",
        *(f"{name}={value}" for name, value in variables.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def parse_job(spec: str) -> SimJob:
    """`ID:ITEMS[:STATUS]`, as `python -m tooling.pleo_sim --job` takes it."""
    job_id, items, *status = spec.split(":")
    return SimJob(
        job_id.lower(), status=status[0] if status else "in_progress", generated_items=int(items)
    )


@contextmanager
def local_sam(
    items: int = 2500,
    env_file: Path = ENV_FILE,
    *,
    alias: str = HOST_ALIAS,
    bind: str = "0.0.0.0",  # noqa: S104 - a container must reach it (docs/security.md: loopback only)
    jobs: tuple[SimJob, ...] = (),
    overrides: dict[str, str] | None = None,
    moto_port: int | None = None,
    pleo_port: int | None = None,
) -> Iterator[LocalSam]:
    """The stand-ins and the template's resources (the function itself: `serve_function`),
    and the env-vars file for `sam local invoke`."""
    simulator = PleoSimulator()
    job = simulator.add_job(SimJob(sample_job_id(), generated_items=items))
    for extra in jobs:
        simulator.add_job(extra)
    pleo_port, moto_port = pleo_port or free_port(), moto_port or free_port()
    moto = ThreadedMotoServer(ip_address=bind, port=moto_port, verbose=False)
    with serve(simulator, bind, pleo_port):
        moto.start()
        try:
            # The function runs in this process: Pleo on loopback for it, on `alias` for a
            # container.
            pleo_url = f"http://127.0.0.1:{pleo_port}"
            with local_stack(
                pleo_url,
                endpoint=f"http://127.0.0.1:{moto_port}",
                stack=STACK,
                overrides=overrides,
            ) as aws:
                variables = container_variables(aws, (moto_port, pleo_port), alias)
                env_file.parent.mkdir(parents=True, exist_ok=True)
                env_file.write_text(json.dumps({FUNCTION: variables}, indent=2) + "\n")
                yield LocalSam(
                    simulator,
                    aws,
                    job,
                    pleo_port,
                    moto_port,
                    env_file,
                    variables,
                    f"http://127.0.0.1:{pleo_port}",
                    [job, *jobs],
                )
        finally:
            moto.stop()


def _stop_on_signals() -> None:
    """Ctrl-C, `kill -INT PID` and `kill PID` stop the stack (and remove out/ops.env), also
    when it was started in the background by a shell that ignores SIGINT for such jobs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2500, help="items in the sample job")
    parser.add_argument(
        "--job",
        action="append",
        default=[],
        type=parse_job,
        metavar="ID:ITEMS[:STATUS]",
        help="another job to seed (status defaults to in_progress); more: PLEO_SIM_URL's admin API",
    )
    parser.add_argument(
        "--lambda-timeout",
        type=float,
        default=LAMBDA_TIMEOUT,
        metavar="SECONDS",
        help="each invocation's time-out (the template's by default; a few seconds: jobs go on"
        " in Step Functions)",
    )
    parser.add_argument("--page-size", type=int, help="PLEO_PAGE_SIZE (the template's default)")
    parser.add_argument("--function-logs", action="store_true", help="the function's INFO logs")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    parser.add_argument("--ops-env", type=Path, default=OPS_ENV)
    parser.add_argument("--bind", default="0.0.0.0", help="the servers' address")  # noqa: S104
    parser.add_argument("--moto-port", type=int, help="default: a free one")
    parser.add_argument("--pleo-port", type=int, help="default: a free one")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # a stopped execution's traceback
    overrides: dict[str, str] = {
        **short_invocation_settings(args.lambda_timeout),
        **({} if args.function_logs else QUIET),
    }
    if args.page_size:
        overrides["PLEO_PAGE_SIZE"] = str(args.page_size)
    _stop_on_signals()
    with ExitStack() as running:
        local = running.enter_context(
            local_sam(
                args.items,
                args.env_file,
                bind=args.bind,
                jobs=tuple(args.job),
                overrides=overrides,
                moto_port=args.moto_port,
                pleo_port=args.pleo_port,
            )
        )
        app: Any = importlib.import_module("app")  # reads the environment local_sam set
        running.enter_context(serve_function(local.aws, app.lambda_handler, args.lambda_timeout))
        print_summary(local, args.lambda_timeout, args.ops_env)
        # Last: its presence says the stack is ready; it goes with the stack.
        write_ops_env(args.ops_env, ops_variables(local.aws, local.pleo_url))
        running.callback(args.ops_env.unlink, missing_ok=True)
        try:
            wait_forever()
        except KeyboardInterrupt:
            print("stopping the local stack", flush=True)


def print_summary(local: LocalSam, lambda_timeout: float, ops_env: Path) -> None:
    physical = local.aws.physical
    address = f"{local.aws.endpoint.rsplit(':', 1)[0]}"
    lines = [
        f"Pleo simulator  {address}:{local.pleo_port}  (API key 'sim-api-key', admin API /_sim/)",
        *(f"  job {j.id}  {j.item_count:,} items, {j.status}" for j in local.jobs),
        f"moto server     {local.aws.endpoint}  (resources from template.yaml, region {REGION})",
        f"  table          {physical['ScopeTable']}",
        f"  bucket         {physical['ScopeBucket']}",
        f"  queue          {physical['ScopeQueue']}",
        f"  state machine  {physical['ScopeJobStateMachine']}",
        f"  admission      {physical['AdmissionQueue']}  (the rule's target; polled here,"
        f" {maximum_concurrency()} at once)",
        f"  function       {physical[FUNCTION]}  (runs here; time-out {lambda_timeout:g} s)",
        f"  tenants        {physical['TenantTable']}",
        f"  tenant key     {physical['TenantKey.Arn']}",
        f"sam local invoke: {invoke_command(local.env_file)}",
        "",
        "The operator CLI, in another shell:",
        "",
        f"  {source_command(ops_env)}",
        f"  pleo-scope-ops retrigger {local.job.id} --wait",
        "",
        "Ctrl-C stops the stack. One line per invocation follows.",
    ]
    print("\n".join(lines), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
