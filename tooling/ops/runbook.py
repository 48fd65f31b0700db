"""Regenerate the runbook examples of docs/operating.md, made as an operator makes them: the
local stack (`make local-stack`'s `python -m tooling.testkit.local_sam`) in a process of its
own, and each `pleo-scope-ops` command run in bash with the stack's ops.env sourced; their
output is captured as it was printed. A published job, a running one, one whose execution was
stopped (stuck) and its recovery by `retrigger`, a failed one, a refused trigger, the bus; a
managed-OAuth company onboarded, walked, disabled and enabled, its grant refused (relink) and
replaced, its walk resumed; and the stack's log.

    .venv/bin/python -m tooling.ops.runbook               # print them
    .venv/bin/python -m tooling.ops.runbook --write-docs  # and write docs/operating.md's block
"""

from __future__ import annotations

import argparse
import shlex
import time
import uuid
from pathlib import Path

from tooling import ROOT
from tooling.ops.shell import Shell, local_stack_process, ops_command
from tooling.reports.docs_writer import DocSection
from tooling.testkit.local_sam import shown_path, source_command
from tooling.testkit.samples import sample_job_id

SECTION = DocSection("operating.md", "ops-runbook")
OUT = ROOT / "out" / "runbook"
RUNNING, STUCK, FAILED = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
COMPANY, FIRST, RELINKED = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
"""A managed-OAuth company and two of its jobs (45 items: 5 pages)."""
# 8-second invocations of 10-item pages; the two larger jobs slowed down (0.1-0.15 s a page)
# so that they are handed over to Step Functions and still run while they are looked at.
STACK_ARGS = [
    *("--items", "100", "--lambda-timeout", "8", "--page-size", "10"),
    *("--job", f"{RUNNING}:1500", "--job", f"{STUCK}:1000", "--job", f"{FAILED}:45"),
]


class Session:
    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.blocks: list[str] = []

    def show(self, title: str, *args: str, stdin: Path | None = None) -> int:
        """Run `pleo-scope-ops ARGS` in the shell (reading the file `stdin`, if given) and
        keep what it printed for the docs."""
        done = self.shell.ops(*args, stdin=stdin)
        printed = (done.stdout + done.stderr).rstrip()
        shown = f"$ {ops_command(args, stdin)}\n{printed}"
        if done.returncode:
            shown += f"\n(exit status {done.returncode})"
        self.blocks.append(f"{title}\n\n```\n{shown}\n```")
        return done.returncode

    def note(self, text: str) -> None:
        self.blocks.append(text)

    def until_not_running(self, job_id: str) -> None:
        for _ in range(1200):
            if self.shell.status(job_id)["state"] != "running":
                return
            time.sleep(0.5)
        raise RuntimeError(f"{job_id} still running")


def check(done: int, wanted: int, what: str) -> None:
    if done != wanted:
        raise SystemExit(f"{what}: exit status {done}, not {wanted}")


def generate(out: Path = OUT) -> str:
    sample = sample_job_id()
    with local_stack_process(out, STACK_ARGS) as shell:
        session = Session(shell)
        ops_env = out / "ops.env"
        session.note(
            "The stack and the shell they ran in:\n\n```\n"
            f"$ python -m tooling.testkit.local_sam {shlex.join(STACK_ARGS)} &\n"
            f"$ {source_command(ops_env)}\n```"
        )
        check(
            session.show("A job's trigger, synchronously:", "retrigger", sample, "--wait"),
            0,
            "retrigger --wait",
        )
        for job_id, seconds in ((RUNNING, 0.15), (STUCK, 0.1)):
            check(shell.slow_down(job_id, seconds).returncode, 0, "slow down")
        # The job to be stuck: triggered, handed over, its execution stopped from outside.
        check(shell.ops("retrigger", STUCK).returncode, 0, "retrigger")
        check(shell.stop_execution(shell.running_execution(STUCK)).returncode, 0, "stop")
        session.until_not_running(STUCK)
        check(
            session.show("Another, asynchronously (as the rule does):", "retrigger", RUNNING),
            0,
            "retrigger",
        )
        shell.running_execution(RUNNING)
        session.show("A job whose walk runs in the state machine:", "status", RUNNING)
        session.note(
            f"Meanwhile the execution of {STUCK} was stopped while its walk ran (what `aws"
            " stepfunctions stop-execution --execution-arn ARN` does; the script calls boto3's"
            " `stop_execution`, `tooling/ops/shell.py`)."
        )
        session.show("Unpublished jobs, stuck ones first:", "list")
        check(session.show("A stuck job:", "status", STUCK), 3, "stuck")
        session.show("A healthy, published job:", "status", sample)
        session.show("The recovery: re-send the stuck job's trigger:", "retrigger", STUCK)
        session.show("Right after, the walk goes on from its checkpoint:", "status", STUCK)
        session.until_not_running(STUCK)
        check(session.show("Once its trigger was re-sent:", "status", STUCK), 0, "published")
        check(session.show("What it published, checked:", "verify", STUCK), 0, "verify")
        # Pleo fails this one after its last page (request 1 checks the job, 2..6 fetch its
        # 5 pages): the check before publishing ends the run with a final error.
        check(shell.fail_job_on_request(FAILED, 6).returncode, 0, "fail job")
        check(
            session.show(
                "A job that Pleo failed while it was walked (nothing is published):",
                *("retrigger", FAILED, "--wait"),
            ),
            1,
            "retrigger of a failed job",
        )
        check(
            session.show("A failed job is not stuck: a re-send cannot help", "status", FAILED),
            4,
            "failed",
        )
        session.show(
            "A trigger to a function that does not exist is refused:",
            *("retrigger", sample, "--wait", "--function", "no-such-function"),
        )
        session.show("The trigger put on the event bus:", "retrigger", sample, "--via", "bus")
        for job_id in (sample, RUNNING):
            session.until_not_running(job_id)
        tenant_operations(session, out)
        log = [line for line in shell.log.read_text().splitlines() if _is_invocation(line)]
        session.note(
            "The stack's own log meanwhile, one line per invocation:\n\n```\n"
            + "\n".join(log)
            + "\n```"
        )
        return "\n\n".join(session.blocks)


def tenant_operations(session: Session, out: Path) -> None:
    """A company on managed OAuth, end to end: onboarded, walked, disabled and enabled, its
    grant refused by Pleo mid-walk (relink_needed), a new grant stored, the walk resumed."""
    shell = session.shell
    token_file = shown_path(out / "refresh-token")  # as run from the repository's root
    for job_id in (FIRST, RELINKED):
        check(shell.seed_job(job_id, 45, COMPANY).returncode, 0, "seed a company's job")
    check(shell.install_app(COMPANY, token_file).returncode, 0, "install the app")
    session.note(
        f"A company ({COMPANY}) installs the integration's OAuth app; onboarding keeps the"
        f" grant's refresh token in a file of its own ({token_file}, mode 600; on the local"
        " stack: the simulator's `POST $PLEO_SIM_URL/_sim/companies/COMPANY/grants`,"
        " `tooling/ops/shell.py`). The token goes in on standard input, never on the command"
        " line, and no command prints it:"
    )
    check(
        session.show("Onboarding:", "tenant", "add", COMPANY, "--oauth", stdin=token_file),
        0,
        "tenant add",
    )
    check(
        session.show(
            "Its first job, triggered with its company:",
            "retrigger",
            FIRST,
            "--company",
            COMPANY,
            "--wait",
        ),
        0,
        "retrigger as the company",
    )
    session.show("The job names its company:", "status", FIRST)
    session.show("The function refreshed its tokens (none is shown):", "tenant", "show", COMPANY)
    check(session.show("Stopping a company's walks:", "tenant", "disable", COMPANY), 0, "disable")
    check(
        session.show(
            "Its triggers are refused before any request to Pleo:",
            "retrigger",
            RELINKED,
            "--company",
            COMPANY,
            "--wait",
        ),
        1,
        "a disabled company's trigger",
    )
    check(session.show("And letting them walk again:", "tenant", "enable", COMPANY), 0, "enable")
    # The company uninstalls the app while its next job is walked (Pleo's request 3).
    check(shell.revoke_on_request(RELINKED, 3).returncode, 0, "revoke")
    check(
        session.show(
            "The company uninstalled the app during a walk: Pleo refuses the grant",
            "retrigger",
            RELINKED,
            "--company",
            COMPANY,
            "--wait",
        ),
        1,
        "a refused grant",
    )
    session.show(
        "The registry marked it (in AWS, the tenant-relink-needed alarm fires):", "tenant", "list"
    )
    check(session.show("Only a new grant helps:", "tenant", "enable", COMPANY), 1, "enable refused")
    check(shell.install_app(COMPANY, token_file).returncode, 0, "install the app again")
    session.note(
        f"The company installs the app again; onboarding keeps the new grant's refresh token"
        f" in {token_file} as before."
    )
    check(
        session.show(
            "The relink:", "tenant", "set-credential", COMPANY, "--oauth", stdin=token_file
        ),
        0,
        "set-credential",
    )
    check(
        session.show(
            "Its failed job's trigger re-sent (its company from the walk record):",
            "retrigger",
            RELINKED,
            "--wait",
        ),
        0,
        "retrigger after the relink",
    )
    check(session.show("Published, as the company:", "status", RELINKED), 0, "published")
    (out / "refresh-token").unlink()


def _is_invocation(line: str) -> bool:
    return any(f" {source} " in line for source in ("trigger", "loop")) and line[:2].isdigit()


def document(text: str) -> str:
    return (
        "Produced by `.venv/bin/python -m tooling.ops.runbook --write-docs`: the local stack"
        " in a process of its own, each command in bash with its ops.env sourced, the output"
        f" as printed; do not edit by hand.\n\n{text}"
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
