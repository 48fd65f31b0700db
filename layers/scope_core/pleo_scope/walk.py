"""Follow `endCursor` while `hasNextPage`, one page at a time, within a time budget.

The walker yields each page as it arrives; the caller hands it to whatever persists it
(`pleo_scope.pipeline`) and the walker asks for the next. It holds nothing but the current
page, and it reserves, besides its slowest step, the time the caller says its work still in
flight needs (`reserve`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.errors import MissingCursor, RepeatedCursor, TooManyPages
from pleo_scope.models import ItemPage
from pleo_scope.ports import CursorRegistry, PagePace, RetryDeferred, WalkPosition

DEFAULT_MAX_PAGES = 100_000


class PageSource(Protocol):
    """The part of the Pleo port the walker reads."""

    def get_items_page(self, job: JobRef, after: str | None, budget: Budget) -> ItemPage: ...

    def pace(self, job: JobRef) -> PagePace: ...


class InMemoryCursorRegistry:
    """Catches a loop within one invocation at once, before the loop's page is requested;
    a durable registry (DynamoDB) catches one that spans invocations."""

    def __init__(self) -> None:
        self._pages: dict[str, int] = {}

    def record(self, cursor: str, page_number: int) -> bool:
        return self._pages.setdefault(cursor, page_number) == page_number


@dataclass(frozen=True, slots=True)
class FetchedPage:
    number: int
    """1-based over the whole walk, across invocations."""
    after: str | None
    """The cursor this page was requested with."""
    page: ItemPage

    @property
    def next_position(self) -> WalkPosition:
        return WalkPosition(self.page.end_cursor, self.number)


StopReason = Literal["complete", "time_budget", "throttled"]


@dataclass(frozen=True, slots=True)
class WalkOutcome:
    reason: StopReason
    position: WalkPosition
    wait_seconds: float = 0.0
    """With `throttled`: how long Pleo asked the next attempt to wait."""

    @property
    def done(self) -> bool:
        return self.reason == "complete"


class PageWalker:
    """Iterate it for pages; read `outcome` once the iteration ends."""

    def __init__(
        self,
        source: PageSource,
        job: JobRef,
        budget: Budget,
        *,
        start: WalkPosition | None = None,
        cursors: CursorRegistry | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        safety_margin: float = 0.0,
        reserve: Callable[[], float] | None = None,
        slice_budget: Budget | None = None,
        slice_min_pages: int = 0,
        job_items: int | None = None,
    ) -> None:
        """`slice_budget`: a shorter budget the walk keeps to once it has fetched
        `slice_min_pages` pages (a few pages are not worth a hand-over). `job_items`: the
        job's `numberOfItems`, if known, for a slice to hand over before the first page."""
        self._source = source
        self._job = job
        self._budget = budget
        self._position = start or WalkPosition()
        self._cursors = cursors or InMemoryCursorRegistry()
        self._max_pages = max_pages
        self._safety_margin = safety_margin
        self._reserve = reserve or (lambda: 0.0)
        self._slowest_step = 0.0
        self._slice = slice_budget
        self._slice_min_pages = slice_min_pages
        self.outcome: WalkOutcome | None = None
        self._started_mid_walk = self._position.pages_fetched > 0
        self._last_page: ItemPage | None = None
        self._first_page_size = 0
        self._job_items = job_items

    def __iter__(self) -> Iterator[FetchedPage]:
        clock = self._budget.clock
        fetched_here = 0
        walking_since = clock.monotonic()
        while True:
            budget = self._budget
            if self._slice is not None and fetched_here >= self._slice_min_pages:
                budget = self._slice
            reserve = self._slowest_step + self._reserve() + self._safety_margin
            if not budget.allows(reserve) or self._outlasts_slice(
                fetched_here, clock.monotonic() - walking_since, reserve
            ):
                self.outcome = WalkOutcome("time_budget", self._position)
                return
            started = clock.monotonic()
            try:
                page = self._source.get_items_page(self._job, self._position.after, budget)
            except RetryDeferred as deferred:
                self.outcome = WalkOutcome("throttled", self._position, deferred.wait_seconds)
                return
            fetched = FetchedPage(self._position.pages_fetched + 1, self._position.after, page)
            fetched_here += 1
            self._last_page = page
            if fetched_here == 1:
                self._first_page_size = len(page.items)
            self._check(fetched)
            yield fetched  # the caller hands it on (or persists it) before we go on
            # A step is the fetch plus the caller's work on it: size the reserve on the slowest.
            self._slowest_step = max(self._slowest_step, clock.monotonic() - started)
            self._position = fetched.next_position
            if not page.has_next_page:
                self.outcome = WalkOutcome("complete", self._position)
                return

    def _outlasts_slice(self, fetched_here: int, walked_seconds: float, reserve: float) -> bool:
        """A slice hands over as soon as the job's size (informative, Pleo's) says that its
        walk has more than `slice_min_pages` pages and that those left do not fit in the
        slice: walking on until the slice runs out would only hold the admission slot longer
        (the loop walks them at the same company's pace). Before the first page, by the
        job's `numberOfItems` at the walk's best pace (its rate limit); after it, by the
        pages' `total` at the pace seen so far. Only for a walk this invocation began at the
        first page."""
        if self._slice is None or self._started_mid_walk:
            return False
        if fetched_here == 0:
            return self._too_large_to_start(reserve)
        page = self._last_page
        if page is None or page.total is None:
            return False
        per_page = self._first_page_size
        if not per_page:
            return False
        pages_in_job = -(-page.total // per_page)
        if pages_in_job <= self._slice_min_pages:
            return False
        pages_left = pages_in_job - fetched_here
        return not self._slice.allows(pages_left * walked_seconds / fetched_here + reserve)

    def _too_large_to_start(self, reserve: float) -> bool:
        if self._slice is None or self._job_items is None:
            return False
        pages, least_seconds = self._source.pace(self._job).least_seconds(self._job_items)
        return pages > self._slice_min_pages and not self._slice.allows(least_seconds + reserve)

    def _check(self, fetched: FetchedPage) -> None:
        page = fetched.page
        if not page.has_next_page:
            return
        where = f"{self._job}, page {fetched.number}"
        if not page.end_cursor:
            raise MissingCursor(f"{where}: hasNextPage is true but endCursor is empty")
        if not self._cursors.record(page.end_cursor, fetched.number):
            raise RepeatedCursor(f"{where}: endCursor repeats a cursor the walk already followed")
        if fetched.number >= self._max_pages:
            raise TooManyPages(
                f"{where}: more pages than the maximum of {self._max_pages} (PLEO_MAX_PAGES)"
            )
