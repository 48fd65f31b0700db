"""A tenant's request budget shared by every process of the fleet: at most N requests to Pleo
in any 60 s, whatever the number of walks, consumers and containers using it.

The budget is a *timeline* per budget key: one shared number, the start of the next free slot.
Slots are `60/N` seconds apart, so any window of W seconds holds at most `W·N/60 + 1` slot
starts: no fixed window (which lets 2N through across its boundary), no bursts, and the same
bound for any 10 s as for any 60 s. A process reserves a BLOCK of consecutive slots with one
atomic move of the timeline (one store call per block, not per request) and spends them
locally, each request starting at its slot's time; the next block is reserved in the
background shortly before the current one runs out, so the store is not on a request's path
once a process is under way. When the budget is idle, a block starts now.

Blocks are sized to keep store calls rare (`BlockPolicy`): a run's first block covers about
2 s (a small job's whole walk at 300 a minute), and each block reserved right after the one
before (nobody else reserved in between) is twice as long, up to 8 s: a long walk alone on
its budget costs a call per 8 s of slots (40 requests at 300 a minute). A block that starts
behind another process's slots is a sign of sharing: a long one is cut to a first block at
once (its tail given back) and the next one is a first block again, so the processes of a
shared budget take turns of a first block, none holding much of it ahead of the others.

A slot is used no later than one interval (at least `LATE_SLOT_US`) after its time; a later
one is dropped, unused: lateness cannot bunch requests beyond one extra per window (at high
rates, beyond 50 ms worth of slots). A slot the invocation cannot wait
for (its wait and a request's worst case do not fit in the remaining time) is not taken:
`SlotUnavailable` says how long to wait, and the caller ends the invocation with a
continuation; a block reserved but never used is given back when nobody reserved after it.

At an invocation's end (`release`), the slots held but not needed are given back (a store
call) when they are worth it: at least a first block's worth, or others were seen sharing
the budget. Fewer are kept: the process's next invocation for the same tenant (a warm Lambda
container keeps its budgets) spends them if they are still due, else they lapse unused.
Keeping or lapsing never bunches requests: a slot is only ever used at its time.

No AWS here: the timeline lives behind `RateBudgetStore` (DynamoDB in `aws/rate_budget.py`,
in memory in the tests).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pleo_scope.clock import Budget, Clock

RateLimitScope = Literal["company", "client"]
RATE_LIMIT_SCOPES: tuple[RateLimitScope, ...] = ("company", "client")

CLIENT_BUDGET_KEY = "client"
DEFAULT_TENANT = "default"
"""Stands for the deployment's default tenant (no companyId) in a company-scoped key."""

MICROS = 1_000_000
LATE_SLOT_US = 50_000
"""A slot may be used this late at least (a request's own jitter, at high rates)."""

logger = logging.getLogger(__name__)


def budget_key(scope: RateLimitScope, company_id: str | None) -> str:
    """The key whose timeline a request to Pleo for `company_id` takes its slot from:
    the company's own, or one for the whole client (every tenant) while Pleo does not say
    what it counts per."""
    if scope == "client":
        return CLIENT_BUDGET_KEY
    return f"company#{(company_id or DEFAULT_TENANT).lower()}"


class RateBudgetStore(Protocol):
    """One timeline per key: the start of its next free slot, in epoch microseconds."""

    def reserve(self, key: str, span_us: int, now_us: int, *, idle_likely: bool) -> int:
        """Atomically move the key's timeline from max(its value, `now_us`) on by `span_us`;
        return where the reserved span starts. `idle_likely`: the caller last saw the timeline
        in the past (an adapter may try the idle case first and save a call)."""
        ...

    def give_back(self, key: str, reserved_end_us: int, back_to_us: int) -> bool:
        """Move the timeline back to `back_to_us`, only if it still ends at `reserved_end_us`
        (nobody reserved after it); True when it did."""
        ...


class SlotUnavailable(Exception):
    """The next slot is further away than the invocation can wait: nothing was taken."""

    def __init__(self, wait_seconds: float, key: str) -> None:
        super().__init__(f"rate budget {key}: next free slot in {wait_seconds:.1f}s")
        self.wait_seconds = wait_seconds
        self.key = key


class RequestSlots(Protocol):
    """What a Pleo client asks before each request (retries and re-reads included)."""

    def take(self, budget: Budget, request_seconds: float) -> float:
        """Wait for the next slot and take it; return the seconds waited. Raises
        `SlotUnavailable` (taking nothing) when the wait and `request_seconds` (a request's
        worst case) do not fit in `budget`."""
        ...


@dataclass
class BudgetStats:
    slots_taken: int = 0
    blocks_reserved: int = 0
    blocks_waited: int = 0
    """Blocks a request had to wait for (none held, none reserved ahead): on its path."""
    give_backs: int = 0
    """Store calls to give slots back (each may find that someone reserved after them)."""
    slots_given_back: int = 0
    """Reserved, not needed, and handed back to the timeline."""
    slots_dropped: int = 0
    """Reserved but not used in time (too late), or lapsed."""
    waited_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BlockPolicy:
    block_seconds: float = 2.0
    """A run's first block covers about this much of the timeline."""
    max_block_seconds: float = 8.0
    """A block reserved right after the one before doubles, up to this."""
    ahead_seconds: float = 0.5
    """The next block is reserved when the slots held cover less than this (at least two
    slots): time for the store call, off the request's path."""
    give_back_seconds: float | None = None
    """At an invocation's end, slots covering at least this much are given back (a call);
    fewer are kept, unless others share the budget. None: one first block's worth."""
    min_slots: int = 6
    max_slots: int = 100

    def slots(self, interval: float) -> int:
        """The first block's slots."""
        return self._bounded(self.block_seconds / interval)

    def max_block(self, interval: float) -> int:
        return max(self.slots(interval), self._bounded(self.max_block_seconds / interval))

    def ahead(self, interval: float) -> int:
        """Reserve the next block when this many slots or fewer are held (at most half a
        first block: at high rates a block is shorter than `ahead_seconds`)."""
        return min(self.slots(interval) // 2, max(2, math.ceil(self.ahead_seconds / interval)))

    def give_back_from(self, interval: float) -> int:
        if self.give_back_seconds is None:
            return self.slots(interval)
        return math.ceil(self.give_back_seconds / interval)

    def _bounded(self, wanted: float) -> int:
        return max(self.min_slots, min(self.max_slots, math.ceil(wanted)))


class FleetBudget:
    """One process's view of one budget key: the slots it holds, and the block being reserved
    ahead. Thread-safe (a walk's threads and a consumer's workers may share it)."""

    def __init__(
        self,
        store: RateBudgetStore,
        key: str,
        requests_per_minute: float,
        clock: Clock,
        *,
        policy: BlockPolicy | None = None,
        executor: Executor | None = None,
    ) -> None:
        if not (math.isfinite(requests_per_minute) and requests_per_minute > 0):
            raise ValueError(f"requests_per_minute must be positive, not {requests_per_minute!r}")
        self.key = key
        self.requests_per_minute = requests_per_minute
        self.stats = BudgetStats()
        self._store = store
        self._clock = clock
        self._interval_us = 60 * MICROS / requests_per_minute
        self._late_us = max(self._interval_us, LATE_SLOT_US)
        policy = policy or BlockPolicy()
        interval = self._interval_us / MICROS
        self._block_slots = policy.slots(interval)
        self._max_block_slots = policy.max_block(interval)
        self._ahead_slots = policy.ahead(interval)
        self._give_back_from = policy.give_back_from(interval)
        self._executor = executor or _shared_executor()
        self._lock = threading.Lock()
        self._slots: deque[int] = deque()
        self._next_block_slots = self._block_slots
        self._held_until_us = 0
        """Where the timeline stood after this process's last block."""
        self._run_start_us = 0
        """Start of the last run of contiguous blocks: the slots from there on are the
        timeline's end while `_held_until_us` is, and may be given back."""
        self._shared = False
        """The last block started behind another process's slots."""
        self._ahead: Future[_Reserved] | None = None

    @property
    def interval_seconds(self) -> float:
        return self._interval_us / MICROS

    @property
    def block_slots(self) -> int:
        return self._block_slots

    def take(self, budget: Budget, request_seconds: float) -> float:
        with self._lock:
            now = self._now_us()
            slot = self._next_slot(now)
            wait = max(0.0, (slot - now) / MICROS)
            if not budget.allows(wait + request_seconds):
                self._slots.appendleft(slot)  # not taken: given back, or kept for later
                self._give_back_unused()
                raise SlotUnavailable(wait, self.key)
            self.stats.slots_taken += 1
            self.stats.waited_seconds += wait
            self._reserve_ahead_if_low(now)
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def release(self) -> None:
        """The invocation is ending: give back the slots held but not needed when they are
        worth a store call (and nobody reserved after them); keep fewer, for this process's
        next invocation on the budget, or to lapse."""
        with self._lock:
            self._collect_ahead(wait=True)
            self._drop_late(self._now_us())
            if self._shared or len(self._slots) >= self._give_back_from:
                self._give_back_unused()

    # -- under the lock ------------------------------------------------------------------

    def _next_slot(self, now: int) -> int:
        self._collect_ahead(wait=False)
        while True:
            self._drop_late(now)
            if self._slots:
                return self._slots.popleft()
            if self._ahead is not None:
                self._collect_ahead(wait=True)
                continue
            self.stats.blocks_waited += 1
            self._accept(self._reserve(now, self._held_until_us, self._next_block_slots))

    def _drop_late(self, now: int) -> None:
        while self._slots and self._slots[0] < now - self._late_us:
            self._slots.popleft()
            self.stats.slots_dropped += 1

    def _reserve_ahead_if_low(self, now: int) -> None:
        if self._ahead is None and len(self._slots) <= self._ahead_slots:
            self._ahead = self._executor.submit(
                self._reserve, now, self._held_until_us, self._next_block_slots
            )

    def _collect_ahead(self, *, wait: bool) -> None:
        ahead = self._ahead
        if ahead is None or not (wait or ahead.done()):
            return
        self._ahead = None
        try:
            reserved = ahead.result()
        except Exception:  # the store failed in the background: the next need asks again
            logger.warning("reserving a rate-budget block ahead failed", exc_info=True)
            return
        self._accept(reserved)

    def _reserve(self, now: int, held_until: int, slots: int) -> _Reserved:
        """The store calls (in the background for a block reserved ahead): no state touched.
        `held_until`: where this process's last block ended (a block starting elsewhere, and
        after now, lies behind another process's slots)."""
        span = round(slots * self._interval_us)
        start = self._store.reserve(self.key, span, now, idle_likely=held_until <= now)
        if start == held_until or start <= now or slots <= self._block_slots:
            return _Reserved(start, span, slots, now)
        # A long block behind someone else's: keep a first block, give the rest back at once
        # (only a racer can have reserved after it yet), so the others of a shared budget
        # wait a first block for their turn, not a long one.
        back_to = start + round(self._block_slots * self._interval_us)
        if not self._store.give_back(self.key, start + span, back_to):
            return _Reserved(start, span, slots, now, trim_tried=True)
        kept = self._block_slots
        return _Reserved(start, back_to - start, kept, now, slots - kept, trim_tried=True)

    def _accept(self, reserved: _Reserved) -> None:
        start = reserved.start
        contiguous = start == self._held_until_us
        if not contiguous:
            self._run_start_us = start
        # Behind someone else's slots: the budget is shared, keep blocks short.
        self._shared = not contiguous and start > reserved.asked_at
        self._next_block_slots = (
            self._block_slots if self._shared else min(self._max_block_slots, 2 * reserved.slots)
        )
        self._held_until_us = start + reserved.span
        self.stats.blocks_reserved += 1
        self.stats.give_backs += reserved.trim_tried
        self.stats.slots_given_back += reserved.trimmed
        self._slots.extend(start + round(i * self._interval_us) for i in range(reserved.slots))

    def _give_back_unused(self) -> None:
        givable = [slot for slot in self._slots if slot >= self._run_start_us]
        if not givable:
            return
        self.stats.give_backs += 1
        if self._store.give_back(self.key, self._held_until_us, givable[0]):
            self.stats.slots_given_back += len(givable)
            self.stats.slots_dropped += len(self._slots) - len(givable)
            self._slots.clear()
            self._held_until_us = self._run_start_us = givable[0]
            self._next_block_slots = self._block_slots

    def _now_us(self) -> int:
        return round(self._clock.now().timestamp() * MICROS)


@dataclass(frozen=True, slots=True)
class _Reserved:
    start: int
    span: int
    slots: int
    asked_at: int
    """The `now` the reservation was asked at: a start later than it (and than this
    process's last block) lies behind another process's slots."""
    trimmed: int = 0
    """Slots of a long block given back at once because it lay behind another's."""
    trim_tried: bool = False


@dataclass
class FleetRateLimiter:
    """The process's budgets, one per key: what a Pleo client (and a consumer, through the
    layer) asks for the slots of a tenant's requests."""

    store: RateBudgetStore
    clock: Clock
    scope: RateLimitScope = "company"
    default_requests_per_minute: float = 500.0
    policy: BlockPolicy = field(default_factory=BlockPolicy)
    executor: Executor | None = None
    _budgets: dict[str, FleetBudget] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def budget(
        self, company_id: str | None = None, requests_per_minute: float | None = None
    ) -> FleetBudget:
        """The budget the requests for `company_id` take their slots from. A company's own
        `requests_per_minute` (its registry record) applies with the company scope; the
        client-wide budget uses the default."""
        key = budget_key(self.scope, company_id)
        rate = self.default_requests_per_minute
        if self.scope == "company" and requests_per_minute:
            rate = requests_per_minute
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None or budget.requests_per_minute != rate:
                budget = FleetBudget(
                    self.store,
                    key,
                    rate,
                    self.clock,
                    policy=self.policy,
                    executor=self.executor,
                )
                self._budgets[key] = budget
            return budget

    def release(self) -> None:
        with self._lock:
            budgets = list(self._budgets.values())
        for budget in budgets:
            budget.release()

    def stats(self) -> BudgetStats:
        """Summed over every key."""
        total = BudgetStats()
        with self._lock:
            budgets = list(self._budgets.values())
        for budget in budgets:
            for name in BudgetStats.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(budget.stats, name))
        return total


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _shared_executor() -> Executor:
    """One background thread per process reserves every budget's next block."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rate-budget")
        return _EXECUTOR
