"""`make local-stack`: the local stack for `sam local invoke`, kept up until Ctrl-C.

Starts the Pleo simulator and moto's server, both bound on all interfaces (a Lambda container
reaches the host through Docker's host gateway, not through the host's loopback), creates
the template's resources in moto, seeds a claimed job whose id is the sample events' id, and
writes an env-vars file whose endpoints name `host.docker.internal`:

    python -m tooling.local_sam [--items 2500] [--env-file out/local-env.json]

then, in another terminal (Docker needed; `sam build` first):

    sam local invoke ScopeJobFunction -e events/eventbridge-export-job-claimed.json \\
        --env-vars out/local-env.json --region eu-west-1 \\
        --add-host host.docker.internal:host-gateway

SAM applies only the variables the template declares (AWS_ENDPOINT_URL is declared, empty,
for this), and sets the region and credentials itself: hence `--region` (the stack's
resources are in eu-west-1; moto takes any credentials). `--add-host` maps the name on
Linux; Docker Desktop maps it already.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moto.server import ThreadedMotoServer

from tooling.local_stack import FUNCTION, REGION, LocalStack, free_port, local_stack
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.server import serve
from tooling.template import TEMPLATE

HOST_ALIAS = "host.docker.internal"
# moto's state is per process: a name of its own keeps it apart from another local stack.
STACK = "pleo-export-scope-sam-local"
EVENTS = TEMPLATE.parent / "events"
SAMPLE_EVENT = EVENTS / "eventbridge-export-job-claimed.json"
ENV_FILE = TEMPLATE.parent / "out" / "local-env.json"


def sample_job_id() -> str:
    job_id: str = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))["detail"]["jobId"]
    return job_id


def invoke_command(env_file: Path) -> str:
    try:
        shown = env_file.resolve().relative_to(TEMPLATE.parent)
    except ValueError:
        shown = env_file
    return (
        f"sam local invoke {FUNCTION} -e {SAMPLE_EVENT.relative_to(TEMPLATE.parent)}"
        f" --env-vars {shown} --region {REGION}"
        f" --add-host {HOST_ALIAS}:host-gateway"
    )


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


def container_variables(aws: LocalStack, moto_port: int, alias: str) -> dict[str, str]:
    """The function's variables as the template declares them, resolved, with every local
    endpoint named by `alias` instead of the loopback address."""
    variables: dict[str, str] = {}
    for name, value in aws.function_env.items():
        for loopback in ("127.0.0.1", "localhost"):
            value = value.replace(f"//{loopback}:{moto_port}", f"//{alias}:{moto_port}")
        variables[name] = value
    variables["AWS_ENDPOINT_URL"] = f"http://{alias}:{moto_port}"
    return variables


@contextmanager
def local_sam(
    items: int = 2500,
    env_file: Path = ENV_FILE,
    *,
    alias: str = HOST_ALIAS,
    bind: str = "0.0.0.0",  # noqa: S104 - a container must reach it (docs/security.md: loopback only)
) -> Iterator[LocalSam]:
    simulator = PleoSimulator()
    job = simulator.add_job(SimJob(sample_job_id(), generated_items=items))
    pleo_port, moto_port = free_port(), free_port()
    moto = ThreadedMotoServer(ip_address=bind, port=moto_port, verbose=False)
    with serve(simulator, bind, pleo_port):
        moto.start()
        try:
            with local_stack(
                f"http://{alias}:{pleo_port}",
                endpoint=f"http://127.0.0.1:{moto_port}",
                stack=STACK,
            ) as aws:
                variables = container_variables(aws, moto_port, alias)
                env_file.parent.mkdir(parents=True, exist_ok=True)
                env_file.write_text(json.dumps({FUNCTION: variables}, indent=2) + "\n")
                yield LocalSam(simulator, aws, job, pleo_port, moto_port, env_file, variables)
        finally:
            moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2500, help="items in the seeded job")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with local_sam(args.items, args.env_file) as local:
        print(f"Pleo simulator  0.0.0.0:{local.pleo_port}  (job {local.job.id}, claimed)")
        print(f"moto server     0.0.0.0:{local.moto_port}  (resources from template.yaml)")
        print(f"env-vars file   {local.env_file}")
        print("\nWith Docker, after `sam build`, in another terminal:\n")
        print(f"  {invoke_command(local.env_file)}\n")
        print(f"scope: s3://{local.aws.physical['ScopeBucket']}/export-jobs/{local.job.id}/")
        print("Ctrl-C stops the stack.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
