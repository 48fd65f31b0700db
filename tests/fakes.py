"""In-memory implementations of the ports (pleo_scope.ports), for unit tests of the service.
They keep the adapters' contracts: conditional checkpoint moves, ledger by (job, run, unit).
No HTTP stack: the Pleo here serves the simulator's jobs (tooling.pleo_sim.SimJob) directly."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pleo_scope.aws.keys import pointer_key, run_manifest_key, run_prefix, run_scope_key
from pleo_scope.clock import Budget, Clock
from pleo_scope.contract import ExecutionName, JobRef, LoopInput, LoopTicket, ScopeLocation
from pleo_scope.errors import (
    ArchivedPageMissing,
    InvalidTenantRecord,
    JobNotFound,
    OAuthClientRejected,
    RepeatedCursor,
    ScopeConflict,
    TokenRefreshUnavailable,
    UnknownTenant,
    WalkInProgress,
)
from pleo_scope.models import ExportJob, ItemPage, JsonObject, parse_job, parse_page
from pleo_scope.oauth import AnswerLost, InvalidGrant, RefreshedTokens
from pleo_scope.ports import (
    FinalError,
    FollowedCursor,
    OutgoingMessage,
    PagePace,
    PleoStats,
    RetryDeferred,
    UnitRecord,
    WalkPosition,
    WalkState,
)
from pleo_scope.tenants import (
    FreshTokens,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantCredential,
    TokenField,
)
from pleo_scope.walk import InMemoryCursorRegistry
from tooling.pleo_sim import SimJob
from tooling.testkit.inline_executor import InlineExecutor as InlineExecutor


@dataclass
class MemoryPleo:
    """Pleo's two reads over `SimJob`s, as the API would answer them: pages of `page_size`
    items, opaque cursors, the job's status as it is when asked. `seconds_per_request` moves
    the test's clock; `defer` makes the next calls raise `RetryDeferred` with those waits
    (what the HTTP client raises when Pleo asks for more than the invocation can wait)."""

    jobs: dict[str, SimJob] = field(default_factory=dict)
    page_size: int = 20
    clock: Any = None
    """A FakeClock (tests.support) moved `seconds_per_request` per request, or None."""
    seconds_per_request: float = 0.0
    worst_case_seconds: float = 0.0
    """A call with less time than this left is deferred, as the HTTP client's requests are."""
    defer: list[float] = field(default_factory=list)
    stats: PleoStats = field(default_factory=PleoStats)
    log: list[tuple[str, str]] = field(default_factory=list)
    """(endpoint, job id) of every request answered."""
    reports_total: bool = False
    """Pages carry `pagination.total` (the job's item count), as Pleo's do; else null."""
    request_interval: float = 0.0
    """The pace it reports (`pace`): the least seconds between requests (0: unpaced)."""

    def add_job(self, job: SimJob) -> SimJob:
        self.jobs[job.id] = job
        return job

    def get_job(self, job: JobRef, budget: Budget) -> ExportJob:
        found = self._request("job", job, budget)
        return parse_job({"data": found.as_resource()}, job.job_id)

    def get_items_page(self, job: JobRef, after: str | None, budget: Budget) -> ItemPage:
        found = self._request("items", job, budget)
        start = int(after.removeprefix("cursor-")) if after else 0
        end = min(start + self.page_size, found.item_count)
        more = end < found.item_count
        document = {
            "data": [found.item_at(i) for i in range(start, end)],
            "pagination": {
                "hasNextPage": more,
                "endCursor": f"cursor-{end}",
                "total": found.item_count if self.reports_total else None,
            },
        }
        return parse_page(document, job.job_id, json.dumps(document).encode())

    def pace(self, job: JobRef) -> PagePace:
        return PagePace(self.page_size, self.request_interval)

    def _request(self, endpoint: str, job: JobRef, budget: Budget) -> SimJob:
        if not budget.allows(self.worst_case_seconds):
            raise RetryDeferred(0.0, f"no time left for a request for {job}")
        if self.defer:
            raise RetryDeferred(self.defer.pop(0), "Pleo asked for a long wait")
        self.stats.requests += 1
        if self.clock is not None:
            self.clock.elapsed += self.seconds_per_request
        self.log.append((endpoint, job.job_id))
        found = self.jobs.get(job.job_id)
        if found is None:
            raise JobNotFound(f"Pleo answered 404 for {job}")
        return found


@dataclass
class MemoryCheckpoints:
    records: dict[str, WalkState] = field(default_factory=dict)
    leases: dict[str, str] = field(default_factory=dict)
    lease_hand_overs: dict[str, int] = field(default_factory=dict)
    registries: dict[tuple[str, int], InMemoryCursorRegistry] = field(default_factory=dict)
    clock: Clock | None = None
    """Given, leases expire as DynamoDB's do (begin writes the expiry, confirm checks it)."""
    confirms: int = 0

    def peek(self, job: JobRef) -> WalkState | None:
        job_id = job.job_id
        state = self.records.get(job_id)
        if state is None:
            return None
        return state.but(
            owner=self.leases.get(job_id, ""),
            lease_hand_over=self.lease_hand_overs.get(job_id),
        )

    def begin(
        self,
        job: JobRef,
        owner: str,
        lease_seconds: float,
        ticket: LoopTicket | None,
        *,
        take_over_from: int | None = None,
    ) -> WalkState:
        job_id = job.job_id
        holder = self.leases.get(job_id)
        dead = {take_over_from} - {None}  # never the ticket's own hand-over (fencing)
        if holder not in (None, owner) and self.lease_hand_overs.get(job_id) not in dead:
            raise WalkInProgress(f"export job {job_id} is held by {holder}")
        self.leases[job_id] = owner
        if ticket is None:
            self.lease_hand_overs.pop(job_id, None)
        else:
            self.lease_hand_overs[job_id] = ticket.hand_over
        state = self.records.get(job_id)
        if state is None or (state.phase == "published" and ticket is None):
            run_id = state.run_id + 1 if state else 1
            fresh = WalkState(job_id, run_id, "walking", None, 0, 0, "2026-11-23T12:00:00Z", owner)
            fresh = fresh.but(company_id=job.company_id)
            state = fresh.but(
                hand_overs=state.hand_overs if state else 0,
                execution_arn=state.execution_arn if state else None,
            )
        until = int(self.clock.now().timestamp() + lease_seconds) + 1 if self.clock else 0
        self.records[job_id] = state = state.but(
            owner=owner, final_error=None, lease_expires_at=until
        )
        return state

    def advance(
        self,
        state: WalkState,
        position: WalkPosition,
        *,
        complete: bool = False,
        followed: Sequence[FollowedCursor] = (),
    ) -> WalkState:
        current = self.records[state.job_id]
        if self.leases.get(state.job_id) != state.owner or (
            current.pages_fetched != state.pages_fetched
        ):
            raise WalkInProgress("the checkpoint moved")
        registry = self.cursors(state)
        for f in followed:  # all or nothing, as the transaction
            if registry._pages.get(f.cursor, f.page_number) != f.page_number:
                raise RepeatedCursor(
                    f"export job {state.job_id}, page {f.page_number}:"
                    " endCursor repeats a cursor the walk already followed"
                )
        for f in followed:
            registry.record(f.cursor, f.page_number)
        moved = state.but(after=position.after, pages_fetched=position.pages_fetched)
        return self._store(moved.but(phase="walked") if complete else moved)

    def restart(self, state: WalkState) -> WalkState:
        if self.leases.get(state.job_id) != state.owner:
            raise WalkInProgress("lease lost")
        fresh = WalkState(
            state.job_id, state.run_id + 1, "walking", None, 0, 0, state.started_at, state.owner
        )
        return self._store(
            fresh.but(hand_overs=state.hand_overs, execution_arn=state.execution_arn)
        )

    def update(self, state: WalkState, **changes: Any) -> WalkState:
        if self.leases.get(state.job_id) != state.owner:
            raise WalkInProgress("lease lost")
        # As DynamoDB's UpdateItem: only the named attributes change in the record.
        self._store(self.records[state.job_id].but(**changes))
        return state.but(**changes)

    def release(self, state: WalkState) -> None:
        if self.leases.get(state.job_id) == state.owner:
            del self.leases[state.job_id]

    def finish(self, state: WalkState) -> WalkState:
        finished = self.update(state, phase="published", lease_expires_at=0)
        self.release(state)
        return finished

    def confirm(self, state: WalkState) -> None:
        self.confirms += 1
        if self.leases.get(state.job_id) != state.owner:
            raise WalkInProgress("lease lost")
        record = self.records.get(state.job_id)
        until = record.lease_expires_at if record else 0
        if self.clock is not None and until <= self.clock.now().timestamp():
            raise WalkInProgress("lease expired")

    def record_final_error(self, job: JobRef, owner: str, error: FinalError) -> None:
        state = self.records.get(job.job_id)
        if state is not None and self.leases.get(job.job_id) in (None, owner):
            self.records[job.job_id] = state.but(final_error=error)

    def cursors(self, state: WalkState) -> InMemoryCursorRegistry:
        """The run's followed cursors (the tests' view; `advance` records them)."""
        return self.registries.setdefault((state.job_id, state.run_id), InMemoryCursorRegistry())

    def _store(self, state: WalkState) -> WalkState:
        self.records[state.job_id] = state
        return state


@dataclass
class MemoryArchive:
    objects: dict[str, bytes] = field(default_factory=dict)
    bucket: str = "memory"

    def put_page(self, job_id: str, run_id: int, number: int, raw: bytes) -> None:
        self.objects[f"{job_id}/pages/{run_id}/{number}"] = raw

    def read_pages(
        self, job_id: str, run_id: int, count: int
    ) -> Generator[list[JsonObject], None, None]:
        for number in range(1, count + 1):
            raw = self.objects.get(f"{job_id}/pages/{run_id}/{number}")
            if raw is None:
                raise ArchivedPageMissing(f"page {number} of run {run_id} is not archived")
            yield json.loads(raw)["data"]

    def put_scope(
        self, job_id: str, run_id: int, jsonl: bytes, manifest: bytes, sha256: str
    ) -> ScopeLocation:
        location = self.location(job_id, run_id)
        if self.objects.setdefault(location.key, jsonl) != jsonl:
            raise ScopeConflict(f"run {run_id}'s scope.jsonl is written with other bytes")
        self.objects.setdefault(location.manifest_key, manifest)  # written once
        return location

    def publish_pointer(self, job_id: str, run_id: int) -> None:
        self.objects[pointer_key(job_id)] = self.objects[run_manifest_key(job_id, run_id)]

    def get_scope(self, job_id: str, run_id: int | None = None) -> bytes:
        """The run's scope; by default the latest run's written."""
        if run_id is None:
            prefix = run_prefix(job_id, 0).rsplit("/", 2)[0] + "/"
            runs = [k for k in self.objects if k.startswith(prefix) and k.endswith("jsonl")]
            return self.objects[max(runs)]
        return self.objects[self.location(job_id, run_id).key]

    def location(self, job_id: str, run_id: int) -> ScopeLocation:
        return ScopeLocation(
            self.bucket, run_scope_key(job_id, run_id), run_manifest_key(job_id, run_id)
        )


@dataclass
class MemoryQueue:
    """A FIFO queue; `refuse` lists units whose send fails that many times."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    refuse: dict[int, int] = field(default_factory=dict)
    calls: int = 0

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        assert len(messages) <= 10
        self.calls += 1
        failed = []
        for message in messages:
            if self.refuse.get(message.unit, 0) > 0:
                self.refuse[message.unit] -= 1
                failed.append(message)
            else:
                self.messages.append(message)
        return failed

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]

    def items(self) -> list[dict[str, Any]]:
        """Every unit's items, in the order the units arrived."""
        return [item for body in self.bodies() for item in body["items"]]


@dataclass
class MemoryLedger:
    """Unit records per (job, run). Given the checkpoints, `record` moves their unit progress
    in the same step, under the lease, as the DynamoDB transaction does."""

    checkpoints: MemoryCheckpoints | None = None
    units: dict[tuple[str, int, int], UnitRecord] = field(default_factory=dict)
    writes: int = 0
    queries: int = 0

    def enqueued_before(self, job_id: str, run_id: int) -> set[bytes]:
        self.queries += 1
        return {
            record.id_hashes[i : i + 16]
            for (job, run, _), record in self.units.items()
            if job == job_id and run < run_id
            for i in range(0, len(record.id_hashes), 16)
        }

    def units_recorded(self, job_id: str, run_id: int, from_unit: int) -> set[int]:
        self.queries += 1
        return {
            unit
            for (job, run, unit) in self.units
            if (job, run) == (job_id, run_id) and unit >= from_unit
        }

    def record(
        self, state: WalkState, units: Sequence[UnitRecord], units_published: int, items: int
    ) -> WalkState:
        self.writes += 1
        progress = {"units_published": units_published, "items_published": items}
        # The condition first: a lost lease writes nothing at all.
        if self.checkpoints is None:
            state = state.but(**progress)
        else:
            state = self.checkpoints.update(state, **progress)
        for unit in units:
            self.units[(state.job_id, state.run_id, unit.unit)] = unit
        return state


@dataclass
class RecordingHandOver:
    """Step Functions as far as the service sees it: executions that run until `close`."""

    started: list[tuple[str, int, int]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    inputs: list[LoopInput] = field(default_factory=list)

    def execution_arn(self, name: ExecutionName) -> str:
        return f"arn:aws:states:local:0:execution:scope:{name}"

    def start(self, loop: LoopInput) -> bool:
        c = loop.continuation
        self.started.append((c.job.job_id, c.run_id, c.hand_over))
        self.inputs.append(loop)
        self.running.add(self.execution_arn(loop.execution_name))
        return True

    def running_execution(self, execution_arn: str) -> str | None:
        return execution_arn if execution_arn in self.running else None

    def close_all(self) -> None:
        self.running.clear()


@dataclass
class MemoryRateBudgetStore:
    """The DynamoDB timeline's contract in memory: atomic moves, give-back only at the end."""

    timelines: dict[str, int] = field(default_factory=dict)
    calls: int = 0

    def reserve(self, key: str, span_us: int, now_us: int, *, idle_likely: bool) -> int:
        self.calls += 1
        start = max(self.timelines.get(key, now_us), now_us)
        self.timelines[key] = start + span_us
        return start

    def give_back(self, key: str, reserved_end_us: int, back_to_us: int) -> bool:
        self.calls += 1
        if self.timelines.get(key) != reserved_end_us:
            return False
        self.timelines[key] = back_to_us
        return True


@dataclass
class MemoryTenantRegistry:
    """The tenant registry's contract (pleo_scope.tenants.TenantRegistry) in memory, as
    DynamoTenantRegistry keeps it: a live lease refuses others, tokens and relink_needed are
    written only on the version they were read at."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    lease_owners: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def put(self, tenant: Tenant) -> None:
        if tenant.company_id in self.tenants:
            raise InvalidTenantRecord(
                f"company {tenant.company_id} is already in the tenant registry"
            )
        self.tenants[tenant.company_id] = replace(tenant, version=0, refresh_lease_expires_at=None)

    def get(self, company_id: str) -> Tenant:
        self.calls += 1
        tenant = self.tenants.get(company_id)
        if tenant is None:
            raise UnknownTenant(f"company {company_id} is not in the tenant registry")
        return tenant

    def take_refresh_lease(
        self, company_id: str, owner: str, now: float, until: float
    ) -> Tenant | None:
        self.calls += 1
        tenant = self.tenants.get(company_id)
        if tenant is None:
            return None
        lease = tenant.refresh_lease_expires_at
        if lease is not None and lease >= now:
            return None
        self.lease_owners[company_id] = owner
        self.tenants[company_id] = tenant = replace(tenant, refresh_lease_expires_at=until)
        return tenant

    def release_refresh_lease(self, company_id: str, owner: str) -> None:
        self.calls += 1
        if self.lease_owners.get(company_id) == owner:
            self._drop_lease(company_id)

    def store_tokens(self, company_id: str, version: int, tokens: FreshTokens) -> Tenant | None:
        self.calls += 1
        tenant = self.tenants.get(company_id)
        if tenant is None or tenant.version != version or tenant.credential.kind != "oauth":
            return None
        credential = OAuthCredential(
            refresh_token=StoredToken(sealed=tokens.refresh_token),
            access_token=StoredToken(sealed=tokens.access_token),
            expires_at=tokens.expires_at,
        )
        self.tenants[company_id] = replace(
            tenant,
            credential=credential,
            version=version + 1,
            access_token_lifetime=tokens.lifetime,
        )
        return self._drop_lease(company_id)

    def mark_relink_needed(self, company_id: str, version: int) -> bool:
        self.calls += 1
        tenant = self.tenants.get(company_id)
        if tenant is None or tenant.version != version:
            return False
        self.tenants[company_id] = replace(tenant, status="relink_needed")
        self._drop_lease(company_id)
        return True

    def set_credential(self, company_id: str, credential: TenantCredential) -> None:
        tenant = self.get(company_id)
        self.tenants[company_id] = replace(
            tenant,
            credential=credential,
            status="active",
            version=tenant.version + 1,
            access_token_lifetime=None,
        )
        self._drop_lease(company_id)

    def _drop_lease(self, company_id: str) -> Tenant:
        self.lease_owners.pop(company_id, None)
        tenant = replace(self.tenants[company_id], refresh_lease_expires_at=None)
        self.tenants[company_id] = tenant
        return tenant


@dataclass
class ReversingCipher:
    """A TokenCipher whose "ciphertext" names the company and field it was sealed for (as
    KMS's encryption context binds it): opened for another, it is an InvalidTenantRecord."""

    calls: int = 0

    def seal(self, company_id: str, name: TokenField, token: str) -> bytes:
        self.calls += 1
        return f"{company_id}/{name}/".encode() + token[::-1].encode()

    def open(self, company_id: str, name: TokenField, stored: StoredToken) -> str:
        if stored.plain is not None:
            return stored.plain
        assert stored.sealed is not None
        self.calls += 1
        context, _, sealed = stored.sealed.decode().rpartition("/")
        if context != f"{company_id}/{name}":
            raise InvalidTenantRecord(f"company {company_id}: credential.{name} does not open")
        return sealed[::-1]


@dataclass
class PleoTokens:
    """A TokenEndpoint keeping Pleo's rules in a few lines: every refresh rotates both
    tokens; a spent refresh token presented again revokes the grant."""

    refresh_token: str = "rt-0"
    lifetime: int = 600
    spent: set[str] = field(default_factory=set)
    revoked: bool = False
    rotations: int = 0
    calls: int = 0
    script: list[str] = field(default_factory=list)
    """Faults for the next calls: "lose_after" (rotate, lose the answer), "lose_before",
    "unavailable", "client"."""
    during_call: Callable[[], None] | None = None

    worst_case_seconds: float = 8.0

    def refresh(self, refresh_token: str) -> RefreshedTokens:
        self.calls += 1
        if self.during_call is not None:
            self.during_call()
        fault = self.script.pop(0) if self.script else None
        if fault == "lose_before":
            raise AnswerLost("ReadTimeout")
        if fault == "unavailable":
            raise TokenRefreshUnavailable("503")
        if fault == "client":
            raise OAuthClientRejected("invalid_client")
        if refresh_token in self.spent:
            self.revoked = True
            raise InvalidGrant("invalid_grant")
        if self.revoked or refresh_token != self.refresh_token:
            raise InvalidGrant("invalid_grant")
        self.spent.add(refresh_token)
        self.rotations += 1
        self.refresh_token = f"rt-{self.rotations}"
        if fault == "lose_after":
            raise AnswerLost("RemoteProtocolError")
        return RefreshedTokens(f"at-{self.rotations}", self.refresh_token, self.lifetime)
