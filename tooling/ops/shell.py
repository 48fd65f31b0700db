"""The local stack operated from a shell, as an operator does: `python -m tooling.testkit.local_sam`
(what `make local-stack` runs) in a process of its own, then every command in bash with its
`out/ops.env` sourced and nothing else naming the stack. The runbook examples and the
shell-session test are made this way."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling import ROOT

BIN = Path(sys.executable).parent
# What the operator's own shell must not bring: the stack is named by ops.env alone.
FOREIGN = ("AWS_", "SCOPE_", "STATE_MACHINE_ARN", "EVENT_", "PLEO_", "POWERTOOLS_", "TENANT_")
EXIT_STUCK = 3  # tooling.ops.cli.EXIT_STUCK, without importing the CLI here
# Onboarding's part of an installation: the new grant's refresh token kept in a file of the
# operator's own (never on a command line), for `tenant add|set-credential --oauth < FILE`.
PRINT_REFRESH_FIELD = "import json, sys; print(json.load(sys.stdin)['refreshToken'])"
# What `aws stepfunctions stop-execution` does, through the SDK (the venv has no aws CLI).
STOP_EXECUTION = (
    "import sys, boto3; boto3.client('stepfunctions')"
    ".stop_execution(executionArn=sys.argv[1], error='Stopped', cause='an operator')"
)


@dataclass
class Shell:
    ops_env: Path
    log: Path

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """`command` in bash, after `set -a; . out/ops.env; set +a` (the stack's printed line)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        script = f"set -a; . {shlex.quote(str(self.ops_env))}; set +a; {command}"
        return subprocess.run(
            ["bash", "-c", script],  # noqa: S607 - bash from PATH, as an operator's
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            cwd=ROOT,
        )

    def ops(self, *args: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`pleo-scope-ops ARGS`, reading `stdin` (a file) when given."""
        return self.run(ops_command(args, stdin))

    def seed_job(
        self, job_id: str, items: int, company_id: str
    ) -> subprocess.CompletedProcess[str]:
        """A claimed job of `company_id` at the simulator (its admin API)."""
        job = {"id": job_id, "generatedItems": items, "companyId": company_id}
        return self._post("/_sim/jobs", job)

    def install_app(self, company_id: str, token_file: Path) -> subprocess.CompletedProcess[str]:
        """The company installs the simulator's OAuth app (a new grant); its refresh token
        goes to `token_file` (readable by its owner only), nothing to the output."""
        grants = shlex.quote(f"/_sim/companies/{company_id}/grants")
        return self.run(
            f'umask 077; curl -fsS -X POST "$PLEO_SIM_URL"{grants} -d {{}}'
            f" | python -c {shlex.quote(PRINT_REFRESH_FIELD)} > {shlex.quote(str(token_file))}"
        )

    def revoke_on_request(self, job_id: str, request: int) -> subprocess.CompletedProcess[str]:
        """When Pleo answers `job_id`'s request number `request`, the company uninstalls the
        app: every credential of it stops working (its grant revoked)."""
        return self._inject(job_id, {"kind": "revoke", "onRequests": [request]})

    def status(self, job_id: str) -> dict[str, Any]:
        done = self.ops("status", job_id, "--json")
        if done.returncode not in (0, EXIT_STUCK):
            raise RuntimeError(f"status {job_id}: {done.stderr}")
        status: dict[str, Any] = json.loads(done.stdout)
        return status

    def running_execution(self, job_id: str, patience: int = 600) -> str:
        """The ARN of the execution that runs `job_id`'s walk, once there is one."""
        for _ in range(patience):
            execution = self.status(job_id)["execution"]
            if execution is not None and execution["status"] == "RUNNING":
                return str(execution["arn"])
            time.sleep(0.3)
        raise RuntimeError(f"no execution of {job_id} ran: {self.log.read_text()[-2000:]}")

    def stop_execution(self, arn: str) -> subprocess.CompletedProcess[str]:
        return self.run(shlex.join(["python", "-c", STOP_EXECUTION, arn]))

    def slow_down(self, job_id: str, seconds_per_page: float) -> subprocess.CompletedProcess[str]:
        """Each page of `job_id` answered `seconds_per_page` late (the simulator's admin API)."""
        return self._inject(job_id, {"kind": "latency", "seconds": seconds_per_page})

    def fail_job_on_request(self, job_id: str, request: int) -> subprocess.CompletedProcess[str]:
        """Pleo fails `job_id` when it answers its request number `request` (the admin API):
        a job that stops being claimed mid-walk."""
        return self._inject(job_id, {"kind": "set_job_status", "onRequests": [request]})

    def _inject(self, job_id: str, fault: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """One fault for `job_id`, through the simulator's admin API, with curl as an operator
        would."""
        return self._post(f"/_sim/jobs/{job_id}/faults", [fault])

    def _post(self, path: str, document: object) -> subprocess.CompletedProcess[str]:
        url = f'"$PLEO_SIM_URL"{shlex.quote(path)}'
        return self.run(f"curl -fsS -X POST {url} -d {shlex.quote(json.dumps(document))}")


def ops_command(args: Sequence[str], stdin: Path | None = None) -> str:
    command = shlex.join(["pleo-scope-ops", *args])
    return command if stdin is None else f"{command} < {shlex.quote(str(stdin))}"


@contextmanager
def local_stack_process(out: Path, arguments: Sequence[str] = ()) -> Iterator[Shell]:
    """`python -m tooling.testkit.local_sam ARGUMENTS` on loopback, its files in `out`, until the
    block ends (then Ctrl-C, as an operator stops it). Yields a shell that sources its
    ops.env, once the stack has written it (it does so when ready)."""
    out.mkdir(parents=True, exist_ok=True)
    ops_env, log = out / "ops.env", out / "local-stack.log"
    ops_env.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "tooling.testkit.local_sam",
        *arguments,
        *("--bind", "127.0.0.1"),
        *("--ops-env", str(ops_env), "--env-file", str(out / "local-env.json")),
    ]
    with log.open("w") as written:
        stack = subprocess.Popen(command, cwd=ROOT, stdout=written, stderr=subprocess.STDOUT)
    try:
        while not ops_env.exists():
            if stack.poll() is not None:
                raise RuntimeError(f"the local stack ended: {log.read_text()}")
            time.sleep(0.2)
        yield Shell(ops_env, log)
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
