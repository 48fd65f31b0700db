"""Regenerate the runbook examples of docs/operating.md: real `pleo-scope-ops` output on the
local stack (simulator + moto, the real ASL) for a published, a running, a stuck and a failed
job, and the stuck job's recovery by `retrigger`.

    .venv/bin/python -m tooling.ops.runbook               # print them
    .venv/bin/python -m tooling.ops.runbook --write-docs  # and write docs/operating.md's block
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner, Result

from pleo_scope.errors import JobNotClaimed
from tooling.docs_writer import DocSection
from tooling.executions import follow_walk
from tooling.harness import Stack, open_stack
from tooling.local_stack import route_lambda
from tooling.ops.cli import main
from tooling.ops.resources import ENV_OF
from tooling.pleo_sim import Fault, SimJob
from tooling.robustness import invoke_crashing

SECTION = DocSection("operating.md", "ops-runbook")
INVOCATION_SECONDS = 2.5


class Session:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.blocks: list[str] = []

    def invoke(self, *args: str) -> Result:
        """The CLI in this process, the local stack named explicitly."""
        physical = self.stack.aws.physical
        names = [
            *("--endpoint-url", self.stack.aws.endpoint),
            *("--table", physical["ScopeTable"], "--bucket", physical["ScopeBucket"]),
            *("--state-machine-arn", physical["ScopeJobStateMachine"]),
            *("--function", physical["ScopeJobFunction"]),
        ]
        return CliRunner().invoke(main, [*names, *args], env=dict.fromkeys(ENV_OF.values()))

    def run(self, title: str, *args: str) -> Result:
        """Run and keep the command and its output for the docs."""
        result = self.invoke(*args)
        shown = f"$ pleo-scope-ops {' '.join(args)}\n{result.stdout.rstrip()}"
        if result.exit_code:
            shown += f"\n(exit status {result.exit_code})"
        self.blocks.append(f"{title}\n\n```\n{shown}\n```")
        return result


def slow_job(stack: Stack, items: int, seconds_per_page: float) -> SimJob:
    job = stack.new_job(items=items)
    stack.simulator.inject(job.id, Fault("latency", seconds=seconds_per_page))
    return job


def stopping(stack: Stack, victim: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """The loop's second invocation for `victim` stops its execution (an operator, a
    redeploy) and dies: the walk is left where its checkpoint is."""
    sfn = stack.aws.client("stepfunctions")
    calls = {"n": 0}

    def handle(event: dict[str, Any], context: Any) -> Any:
        if event.get("jobId") == victim and "continuation" in event:
            calls["n"] += 1
            if calls["n"] == 2:
                for execution in sfn.list_executions(
                    stateMachineArn=stack.aws.physical["ScopeJobStateMachine"],
                    statusFilter="RUNNING",
                )["executions"]:
                    if victim in execution["name"]:
                        sfn.stop_execution(executionArn=execution["executionArn"], error="Stopped")
                raise RuntimeError("stopped by an operator")
        return handler(event, context)

    return handle


def crashed(stack: Stack) -> SimJob:
    """A trigger whose invocation died mid-walk (Lambda killed it: a time-out, out of memory),
    with no execution to carry on: the lease runs out, nothing runs the walk."""
    job = stack.new_job(items=450)
    invoke_crashing(stack, {"jobId": job.id}, "page_fetched", 20)
    return job


def failed(stack: Stack) -> SimJob:
    """A job that Pleo failed while it was walked (after its last page): the check before
    publishing ends the run with JobNotClaimed, a final error; nothing is published."""
    job = stack.new_job(items=45)  # request 1 checks the job, 2..6 fetch its 5 pages
    stack.simulator.inject(job.id, Fault("set_job_status", frozenset({6}), job_status="failed"))
    try:
        stack.invoke({"jobId": job.id})
    except JobNotClaimed:
        return job
    raise AssertionError("the job was published although Pleo failed it")


def generate() -> str:
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # the stopped execution's error
    with open_stack(quiet=True) as stack:
        session = Session(stack)
        healthy = stack.new_job(items=450)
        assert stack.invoke({"jobId": healthy.id})["done"] is True
        crashed(stack)
        gone = failed(stack)
        stuck = slow_job(stack, 300, 0.1)
        running = slow_job(stack, 600, 0.15)
        handler = stack.app.lambda_handler
        with route_lambda(stopping(stack, stuck.id, handler), INVOCATION_SECONDS):
            stack.invoke({"jobId": stuck.id}, timeout_seconds=INVOCATION_SECONDS)
            assert follow_walk(stack.aws, stuck.id).final["status"] in ("ABORTED", "FAILED")
        with route_lambda(handler, INVOCATION_SECONDS):
            stack.invoke({"jobId": running.id}, timeout_seconds=INVOCATION_SECONDS)
            session.run("A job whose walk runs in the state machine:", "status", running.id)
            session.run("Unpublished jobs, stuck ones first, then failed ones:", "list")
            session.run(
                "A stuck job (its execution ended, the walk unfinished):", "status", stuck.id
            )
            session.run(
                "A failed job (Pleo failed it mid-walk: a final error, nothing published, and"
                " re-sending its trigger cannot help):",
                "status",
                gone.id,
            )
            session.run("A healthy, published job:", "status", healthy.id)
            assert follow_walk(stack.aws, running.id).final["status"] == "SUCCEEDED"

            session.run("The recovery: re-send the stuck job's trigger:", "retrigger", stuck.id)
            session.run("Right after, the walk goes on from its checkpoint:", "status", stuck.id)
            for _ in range(600):  # done by the re-sent trigger, or by a new execution
                status = json.loads(session.invoke("status", stuck.id, "--json").stdout)
                if status["state"] != "running":
                    break
                time.sleep(0.5)
            session.run("The stuck job, once its trigger was re-sent:", "status", stuck.id)
            session.run("What it published, checked:", "verify", stuck.id)
        return "\n\n".join(session.blocks)


def document(text: str) -> str:
    return (
        f"Produced by `.venv/bin/python -m tooling.ops.runbook --write-docs` on the"
        f" local stack; do not edit by hand.\n\n{text}"
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true", help="into docs/operating.md")
    args = parser.parse_args()
    text = generate()
    print(text)
    if args.write_docs:
        SECTION.write(document(text))


if __name__ == "__main__":
    run()
