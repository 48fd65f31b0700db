"""The wire shapes of the scope step (DESIGN.md, contract v3), typed, in one place: the job
reference, the continuation (the Step Functions loop state), the step result, the state
machine's input and its execution names. Each has ONE writer (`payload`, `__str__`) and ONE
reader (`read`); nothing else builds or parses these dicts. The ASL
(statemachine/scope_job.asl.json) moves the same fields, and tests hold it to this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from pleo_scope.checks import FieldChecker

type Payload = dict[str, Any]

MAX_WAIT_SECONDS = 86_400
"""The longest wait a continuation asks for (the loop's `waitSeconds` bound: a day)."""

Phase = Literal["walking", "walked", "scoped", "published"]
"""walking: pages still to fetch · walked: every page in S3 · scoped: scope.jsonl and
scope.json written · published: every in-scope item on the queue."""


def wait_for_step_functions(seconds: float) -> int:
    """Whole seconds from 0 to 86,400 for the Wait state, whatever Pleo asked for (a
    far-future date, `inf`, `nan`: not finite counts as longer than any cap)."""
    if math.isnan(seconds):
        return MAX_WAIT_SECONDS
    if seconds <= 0:
        return 0
    return MAX_WAIT_SECONDS if seconds >= MAX_WAIT_SECONDS else math.ceil(seconds)


@dataclass(frozen=True, slots=True)
class JobRef:
    """One export job of one company: lower-case UUIDs; `company_id` None is the default
    tenant (the deployment's own secret, as in contract v2)."""

    job_id: str
    company_id: str | None = None

    def payload(self) -> Payload:
        return {"jobId": self.job_id, "companyId": self.company_id}

    @classmethod
    def read(
        cls, check: FieldChecker, document: Mapping[str, Any], prefix: str = ""
    ) -> JobRef | None:
        """`jobId` (required) and `companyId` (absent or null: the default tenant)."""
        job_id = check.uuid(document, "jobId", prefix)
        company_id = check.optional_uuid(document, "companyId", prefix)
        return None if job_id is None else cls(job_id, company_id)

    def __str__(self) -> str:
        return f"export job {self.job_id}"


@dataclass(frozen=True, slots=True)
class LoopTicket:
    """What a Step Functions loop invocation works for: a run, under one hand-over."""

    run_id: int
    hand_over: int
    execution_arn: str | None = None
    """The execution that invoked (`$$.Execution.Id`): it becomes the walk's owner of record."""


@dataclass(frozen=True, slots=True)
class Continuation:
    """The loop state: what a `done: false` result carries, and what the state machine
    hands the function back (`{"jobId", "companyId", "continuation": {"runId", "handOver"}}`,
    plus `execution`, the invoking execution, added by the ASL)."""

    job: JobRef
    run_id: int
    hand_over: int
    execution_arn: str | None = None

    @property
    def ticket(self) -> LoopTicket:
        return LoopTicket(self.run_id, self.hand_over, self.execution_arn)

    def payload(self) -> Payload:
        document: Payload = {
            **self.job.payload(),
            "continuation": {"runId": self.run_id, "handOver": self.hand_over},
        }
        if self.execution_arn is not None:
            document["execution"] = self.execution_arn
        return document

    @classmethod
    def read(cls, event: Mapping[str, Any]) -> Continuation:
        """Other fields (a whole `done: false` result given back) are ignored."""
        check = FieldChecker("LoopState")
        job = JobRef.read(check, event)
        run_id = hand_over = None
        continuation = event.get("continuation")
        if isinstance(continuation, dict):
            run_id = check.positive_integer(continuation, "runId", "continuation.")
            hand_over = check.positive_integer(continuation, "handOver", "continuation.")
        else:
            check.problem("continuation", "Input should be an object")
        execution = event.get("execution")
        if execution is not None and not isinstance(execution, str):
            check.problem("execution", "Input should be a string")
        check.finish()  # raises when any of them is missing or invalid
        assert job is not None
        assert run_id is not None
        assert hand_over is not None
        return cls(job, run_id, hand_over, execution)


@dataclass(frozen=True, slots=True)
class ScopeLocation:
    bucket: str
    key: str
    manifest_key: str

    def payload(self) -> Payload:
        return {"bucket": self.bucket, "key": self.key, "manifestKey": self.manifest_key}

    @classmethod
    def read(cls, document: Mapping[str, Any]) -> ScopeLocation:
        return cls(document["bucket"], document["key"], document["manifestKey"])


@dataclass(frozen=True, slots=True)
class HandedOver:
    """The running execution that owns the rest of the walk; `adopted`: a trigger found it
    running and touched nothing."""

    execution_arn: str
    adopted: bool = False

    def payload(self) -> Payload:
        document: Payload = {"executionArn": self.execution_arn}
        if self.adopted:
            document["adopted"] = True
        return document

    @classmethod
    def read(cls, document: Mapping[str, Any]) -> HandedOver:
        return cls(document["executionArn"], bool(document.get("adopted", False)))


@dataclass(frozen=True, slots=True)
class Continuing:
    """`done: false`: the walk goes on in a later invocation (the loop's next iteration)."""

    continuation: Continuation
    phase: Phase
    pages_fetched: int
    items_published: int
    wait_seconds: int = 0
    """Whole seconds, 0 to MAX_WAIT_SECONDS (`wait_for_step_functions`)."""
    handed_over: HandedOver | None = None
    """Set for a trigger: the execution that now owns the walk."""

    done: ClassVar[Literal[False]] = False

    @property
    def job(self) -> JobRef:
        return self.continuation.job

    def handing_over(self, hand_over: int, execution_arn: str) -> Continuing:
        """This result once hand-over `hand_over` started `execution_arn` for the rest."""
        return replace(
            self,
            continuation=replace(self.continuation, hand_over=hand_over),
            handed_over=HandedOver(execution_arn),
        )

    def payload(self) -> Payload:
        document: Payload = {
            **self.job.payload(),
            "done": False,
            "phase": self.phase,
            "pagesFetched": self.pages_fetched,
            "itemsPublished": self.items_published,
            "waitSeconds": self.wait_seconds,
            "continuation": self.continuation.payload()["continuation"],
        }
        if self.handed_over is not None:
            document["handedOver"] = self.handed_over.payload()
        return document


@dataclass(frozen=True, slots=True)
class Done:
    """`done: true`: the run's scope is written and every unit of it is on the queue."""

    job: JobRef
    run_id: int
    items_in_scope: int
    pages_fetched: int
    scope: ScopeLocation

    done: ClassVar[Literal[True]] = True

    def payload(self) -> Payload:
        return {
            **self.job.payload(),
            "runId": self.run_id,
            "done": True,
            "itemsInScope": self.items_in_scope,
            "pagesFetched": self.pages_fetched,
            "scope": self.scope.payload(),
        }


type StepResult = Done | Continuing


def read_step_result(payload: Mapping[str, Any]) -> StepResult:
    """The handler's result as typed (tools, tests, an idempotent replay)."""
    job = JobRef(payload["jobId"], payload.get("companyId"))
    if payload["done"]:
        return Done(
            job,
            payload["runId"],
            payload["itemsInScope"],
            payload["pagesFetched"],
            ScopeLocation.read(payload["scope"]),
        )
    continuation = payload["continuation"]
    handed_over = payload.get("handedOver")
    return Continuing(
        Continuation(job, continuation["runId"], continuation["handOver"]),
        payload["phase"],
        payload["pagesFetched"],
        payload["itemsPublished"],
        payload["waitSeconds"],
        HandedOver.read(handed_over) if handed_over is not None else None,
    )


# -- Step Functions -----------------------------------------------------------------------

MAX_EXECUTION_NAME = 80
"""Step Functions' limit on execution names."""
GENERATION_SEPARATOR = "-g"
"""The ASL appends `-g{generation}` to the loop state's `namePrefix` at a continue-as-new."""
_MAX_RUN = _MAX_HAND_OVER = 10**7
_MAX_GENERATION = 10**8
_COMPANY_TAG = 8


@dataclass(frozen=True, slots=True)
class ExecutionName:
    """`scope-{jobId}[-c{company}]-r{run}-h{handOver}-g{generation}`: unique per run,
    hand-over and generation (the job id is a UUID, unique across companies), so a new
    hand-over never collides with an earlier one or with a continue-as-new of any of them.

    Within Step Functions' 80 characters: the company appears as the first 8 characters of
    its id (a tag for people reading the list; the job id already makes the name unique), and
    runs and hand-overs below 10^7 and generations below 10^8 always fit
    (6 + 36 + 10 + 9 + 9 + 10 = 80); a number beyond is refused, never cut."""

    job: JobRef
    run_id: int
    hand_over: int
    generation: int = 0

    def __post_init__(self) -> None:
        if not (
            0 <= self.run_id < _MAX_RUN
            and 0 <= self.hand_over < _MAX_HAND_OVER
            and 0 <= self.generation < _MAX_GENERATION
        ):
            raise ValueError(f"{self.job}: no execution name for {self!r}")

    @property
    def prefix(self) -> str:
        """Everything but the generation (what the loop state carries as `namePrefix`)."""
        company = f"-c{self.job.company_id[:_COMPANY_TAG]}" if self.job.company_id else ""
        return f"scope-{self.job.job_id}{company}-r{self.run_id}-h{self.hand_over}"

    def next_generation(self) -> ExecutionName:
        return replace(self, generation=self.generation + 1)

    def __str__(self) -> str:
        name = f"{self.prefix}{GENERATION_SEPARATOR}{self.generation}"
        assert len(name) <= MAX_EXECUTION_NAME, name
        return name

    @staticmethod
    def following(name: str) -> str | None:
        """The name of the generation after `name` (an execution's name or ARN), or None
        when it is not one of these names."""
        stem, separator, generation = name.rpartition(GENERATION_SEPARATOR)
        if not separator or not generation.isdigit():
            return None
        return f"{stem}{GENERATION_SEPARATOR}{int(generation) + 1}"

    @staticmethod
    def job_prefix(job_id: str) -> str:
        """What every execution name of the job starts with."""
        return f"scope-{job_id}-"


@dataclass(frozen=True, slots=True)
class LoopInput:
    """The state machine's input at a hand-over (the walk itself resumes from the DynamoDB
    checkpoint): the loop state, the wait before the first iteration, and the loop's own
    counters, with the name prefix its continue-as-new appends the generation to."""

    continuation: Continuation
    wait_seconds: int = 0

    @property
    def execution_name(self) -> ExecutionName:
        c = self.continuation
        return ExecutionName(c.job, c.run_id, c.hand_over)

    def payload(self) -> Payload:
        return {
            **self.continuation.payload(),
            "waitSeconds": self.wait_seconds,
            "loop": {
                "iteration": 0,
                "generation": 0,
                "namePrefix": self.execution_name.prefix,
            },
        }
