"""Chaos soak: several large jobs at once through the real state machine (moto executes the
ASL; its Lambda tasks call the handler in this process) while faults are injected, then the
one recovery (re-sending the trigger) for whatever is not published.

    python -m tooling.reports.chaos [--light] [--write-docs]

One row per fault mix: jobs, done, stuck (not published even after the recovery), items
lost and duplicated on the queue, wrong scopes, and trigger results that named an execution
which had already ended. Bounded in time: each mix runs its chaos for `--seconds`, then
re-sends the trigger of every unpublished job until all are published or `--patience` runs
out. The goal: 0 stuck, 0 lost, 0 wrong, 0 closed executions named; duplicates only inside
the documented crash window (none here: every rerun comes within SQS's 5 minutes).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from pleo_scope.contract import JobRef
from pleo_scope.ownership import Ownership
from tooling.pleo_sim import Fault, SimJob
from tooling.reports.docs_writer import DocSection
from tooling.reports.robustness import InjectedCrash
from tooling.testkit.harness import Stack, open_stack
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.loop import INVOCATION_SECONDS

SECTION = DocSection("robustness.md", "chaos-table")
KILL_STEPS = ("job_checked", "page_written", "checkpoint_written", "scope_written",
              "batch_sent", "ledger_written")  # fmt: skip
PORTS = ("archive", "checkpoints", "queue", "ledger", "hand_over")


class SandboxTimedout(Exception):
    """An invocation killed (time-out, out of memory): its lease stays behind."""


@dataclass(frozen=True)
class Mix:
    name: str
    pleo: bool = False
    aws: bool = False
    kills: bool = False
    stops: bool = False
    resends: bool = False


MIXES = (
    Mix("Pleo outages and throttling", pleo=True),
    Mix("AWS errors on every port (S3, DynamoDB, SQS, Step Functions)", aws=True),
    Mix("invocations killed at random points (time-outs, crashes)", kills=True),
    Mix("executions stopped from outside", stops=True),
    Mix("triggers re-sent at random moments", resends=True),
    Mix("all of the above at once", pleo=True, aws=True, kills=True, stops=True, resends=True),
)


@dataclass
class Row:
    mix: Mix
    jobs: int = 0
    done: int = 0
    stuck: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_scope: int = 0
    closed_named: int = 0
    """Trigger results whose `handedOver.executionArn` was not running when returned."""
    recoveries: int = 0
    """Triggers re-sent after the chaos to recover unpublished jobs."""
    injected: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1


class FlakyPort:
    """A port whose calls fail now and then with an AWS error (throttling, 5xx)."""

    def __init__(self, inner: Any, rng: random.Random, rate: float, row: Row) -> None:
        self._inner, self._rng, self._rate, self._row = inner, rng, rate, row

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._rng.random() < self._rate:
                self._row.count("AWS errors")
                code = self._rng.choice(["ThrottlingException", "InternalServerError"])
                raise ClientError({"Error": {"Code": code, "Message": "chaos"}}, name)
            return attribute(*args, **kwargs)

        return call


class KillPlan:
    """Observer: kills the invocation of a job at a planned step (keyed by job: the pipeline
    reports steps from its own threads)."""

    def __init__(self) -> None:
        self.plans: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def on_step(self, step: str, job_id: str, number: int) -> None:
        with self._lock:
            planned = self.plans.get(job_id)
            if planned is None or planned[0] != step:
                return
            if planned[1] > 1:
                self.plans[job_id] = (step, planned[1] - 1)
                return
            del self.plans[job_id]
        raise InjectedCrash(f"{step} #{number}")


@dataclass
class Soak:
    stack: Stack
    rng: random.Random
    items: int
    stop: threading.Event = field(default_factory=threading.Event)
    check_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, mix: Mix, jobs: int, seconds: float, patience: float) -> Row:
        row = Row(mix, jobs=jobs)
        created = [self._job() for _ in range(jobs)]
        kills = KillPlan()
        with (
            self._faults(mix, row, kills),
            route_lambda(self._loop_handler(mix, row, kills), INVOCATION_SECONDS),
        ):
            chaos_kills = kills if mix.kills else None
            chaos = [
                threading.Thread(
                    target=self._chaos, args=(mix, row, created, chaos_kills), daemon=True
                )
            ]
            for job in created:
                self.trigger(job.id, row, chaos_kills)
            self.stop.clear()
            for thread in chaos:
                thread.start()
            self.stop.wait(seconds)
            self.stop.set()
            for thread in chaos:
                thread.join()
            for job in created:
                self.stack.simulator.clear_faults(job.id)
                self.stack.simulator.inject(job.id, Fault("latency", seconds=0.05))
            kills.plans.clear()
        # The faults are over: the one recovery, re-sending the trigger, for the rest.
        with route_lambda(self.stack.app.lambda_handler, INVOCATION_SECONDS):
            deadline = time.monotonic() + patience
            while time.monotonic() < deadline:
                waiting = [j for j in created if not self.published(j.id)]
                if not waiting:
                    break
                for job in waiting:
                    if not self.owned_by_running_execution(job.id):
                        row.recoveries += 1
                        self.trigger(job.id, row)
                time.sleep(2.0)
            self._wait_for_executions(deadline)
        for job in created:
            if self.published(job.id):
                row.done += 1
            else:
                row.stuck += 1
        lost, duplicated, wrong = settle_counts(self.stack, created)
        row.lost, row.duplicated, row.wrong_scope = lost, duplicated, wrong
        return row

    # -- the trigger, as EventBridge delivers it (after the idempotency window) -------------

    def trigger(self, job_id: str, row: Row, kills: KillPlan | None = None) -> None:
        with self.check_lock:  # no execution is stopped between the answer and the check
            self.stack.forget_idempotency()
            if kills is not None and self.rng.random() < 0.25:
                kills.plans[job_id] = (self.rng.choice(KILL_STEPS), self.rng.randint(1, 3))
            try:
                result = self.stack.invoke({"jobId": job_id}, INVOCATION_SECONDS)
            except InjectedCrash:
                row.count("triggers killed")
                self.stack.leave_lease_behind(job_id, None, INVOCATION_SECONDS)
                return
            except Exception:  # EventBridge retries a failed trigger; so does this driver
                row.count("trigger failures")
                return
            finally:
                if kills is not None:
                    kills.plans.pop(job_id, None)
            handed_over = result.get("handedOver")
            if handed_over is not None:
                sfn = self.stack.aws.client("stepfunctions")
                status = sfn.describe_execution(executionArn=handed_over["executionArn"])
                if status["status"] not in ("RUNNING", "SUCCEEDED"):
                    row.closed_named += 1

    def published(self, job_id: str) -> bool:
        record = self.stack.walk_record(job_id)
        return record is not None and record.get("phase") == "published"

    def owned_by_running_execution(self, job_id: str) -> bool:
        service = self.stack.app.app.service
        owner = Ownership(service.checkpoints, service.hand_over).find_owner(JobRef(job_id))
        return owner.running_execution is not None

    # -- fault injection ----------------------------------------------------------------------

    def _job(self) -> SimJob:
        job = self.stack.new_job(items=self.items)
        self.stack.simulator.inject(job.id, Fault("latency", seconds=0.05))
        return job

    @contextmanager
    def _faults(self, mix: Mix, row: Row, kills: KillPlan) -> Iterator[None]:
        app = self.stack.app.app
        faults: dict[str, Any] = {}
        if mix.aws:
            for port in PORTS:
                faults[port] = FlakyPort(getattr(app.service, port), self.rng, 0.005, row)
        if mix.kills:
            faults["observer"] = kills
        with app.injected(**faults):
            yield

    def _loop_handler(
        self, mix: Mix, row: Row, kills: KillPlan
    ) -> Callable[[dict[str, Any], Any], Any]:
        handler = self.stack.app.lambda_handler

        def handle(event: dict[str, Any], context: Any) -> Any:
            job_id = str(event.get("jobId"))
            if not (mix.kills and not self.stop.is_set() and self.rng.random() < 0.4):
                return handler(event, context)
            kills.plans[job_id] = (self.rng.choice(KILL_STEPS), self.rng.randint(1, 3))
            try:
                return handler(event, context)
            except InjectedCrash:
                row.count("loop invocations killed")
                hand_over = int(event["continuation"]["handOver"])
                # Until its time-out: the loop's retries wait it out (fencing).
                self.stack.leave_lease_behind(job_id, hand_over, INVOCATION_SECONDS)
                raise SandboxTimedout("Task timed out") from None
            finally:
                kills.plans.pop(job_id, None)

        return handle

    def _chaos(self, mix: Mix, row: Row, jobs: list[SimJob], kills: KillPlan | None) -> None:
        sfn = self.stack.aws.client("stepfunctions")
        machine = self.stack.aws.physical["ScopeJobStateMachine"]
        outage_until = 0.0
        while not self.stop.wait(self.rng.uniform(0.5, 1.5)):
            if mix.pleo:
                now = time.monotonic()
                if now > outage_until and self.rng.random() < 0.2:  # an outage of a few s
                    outage_until = now + self.rng.uniform(2, 6)
                    row.count("Pleo outages")
                for job in jobs:
                    self.stack.simulator.clear_faults(job.id)
                    faults = [
                        Fault("latency", seconds=0.05),
                        Fault(
                            "status", status=429, retry_after="2", probability=0.1, endpoint="any"
                        ),
                        Fault("status", status=503, probability=0.1, endpoint="any"),
                    ]
                    if now < outage_until:
                        faults.append(Fault("status", status=503, endpoint="any"))
                    self.stack.simulator.inject(job.id, *faults)
            if mix.stops and self.rng.random() < 0.3:
                with self.check_lock:
                    running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")
                    if running["executions"]:
                        victim = self.rng.choice(running["executions"])["executionArn"]
                        sfn.stop_execution(executionArn=victim, error="Chaos")
                        wait_until_closed(sfn, victim)
                        row.count("executions stopped")
            if mix.resends and self.rng.random() < 0.4:
                row.count("triggers re-sent")
                self.trigger(self.rng.choice(jobs).id, row, kills)

    def _wait_for_executions(self, deadline: float) -> None:
        """Let executions that are still running (a last loop after publishing) end."""
        sfn = self.stack.aws.client("stepfunctions")
        machine = self.stack.aws.physical["ScopeJobStateMachine"]
        while time.monotonic() < deadline:
            running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")
            if not running["executions"]:
                return
            time.sleep(0.5)


def wait_until_closed(sfn: Any, execution_arn: str, timeout_seconds: float = 60.0) -> None:
    """AWS's StopExecution closes the execution at once; moto's only sets a flag that the
    execution reads once the state in flight (a running task) ends, and says RUNNING until
    then. Waited for under the check lock, so that no trigger finds a stopped execution
    running, as none would on AWS."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            return
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} still running {timeout_seconds:.0f} s after its stop")


def settle_counts(stack: Stack, jobs: list[SimJob]) -> tuple[int, int, int]:
    """Items lost and duplicated on the queue, and wrong scopes, over the jobs."""
    units = stack.drain_queue()
    lost = duplicated = wrong = 0
    for job in jobs:
        expected = stack.expected_scope(job)
        want = {line.split(b'"accountingEntryId":"', 1)[1].split(b'"', 1)[0].decode()
                for line in expected.splitlines()}  # fmt: skip
        got = [i["accountingEntryId"] for u in units if u["jobId"] == job.id for i in u["items"]]
        lost += len(want - set(got))
        duplicated += len(got) - len(set(got))
        wrong += stack.scope_of(job.id) != expected
    return lost, duplicated, wrong


def soak(
    mixes: tuple[Mix, ...], *, jobs: int, items: int, seconds: float, patience: float, seed: int
) -> list[Row]:
    rows = []
    with open_stack(quiet=True) as stack:
        runner = Soak(stack, random.Random(seed), items)
        for mix in mixes:
            started = time.perf_counter()
            rows.append(runner.run(mix, jobs, seconds, patience))
            print(f"  {mix.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def markdown(rows: list[Row], command: str) -> str:
    lines = [
        f"Produced by `{command}` (see `make chaos`); do not edit by hand.",
        "",
        "| fault mix | jobs | done | stuck | items lost | items duplicated | wrong scopes |"
        " closed executions named | recoveries (triggers re-sent) | injected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        injected = ", ".join(f"{k} x{v}" for k, v in sorted(r.injected.items())) or "-"
        lines.append(
            f"| {r.mix.name} | {r.jobs} | {r.done} | {r.stuck} | {r.lost} | {r.duplicated} |"
            f" {r.wrong_scope} | {r.closed_named} | {r.recoveries} | {injected} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--light", action="store_true", help="one mix (all at once), small")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--items", type=int, default=1500, help="items per job (10 per page)")
    parser.add_argument("--seconds", type=float, default=30.0, help="chaos per mix")
    parser.add_argument("--patience", type=float, default=180.0, help="recovery per mix")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--write-docs", action="store_true", help="into docs/robustness.md")
    args = parser.parse_args()
    mixes = MIXES[-1:] if args.light else MIXES
    started = time.perf_counter()
    rows = soak(
        mixes,
        jobs=args.jobs,
        items=args.items,
        seconds=args.seconds,
        patience=args.patience,
        seed=args.seed,
    )
    command = "python -m tooling.reports.chaos" + (" --light" if args.light else "")
    table = markdown(rows, command)
    print(table)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.write_docs:
        if args.light:
            raise SystemExit("--write-docs takes the full soak only")
        SECTION.write(table)


if __name__ == "__main__":
    main()
