"""The walk step of an invocation: fetch pages from the checkpoint on while the pipeline
archives and checkpoints them behind the walk, and rebuild the scope from the archive when
the walk spanned several invocations."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pleo_scope.clock import Budget
from pleo_scope.invocation import InvocationStats, ServiceSettings, WalkSlice
from pleo_scope.pipeline import WalkPipeline
from pleo_scope.ports import CheckpointStore, Pleo, ScopeArchive, StepObserver, WalkState
from pleo_scope.scope import Scope, ScopeBuilder
from pleo_scope.walk import PageWalker, WalkOutcome

logger = logging.getLogger(__name__)

REBUILD_WARM_UP = 8
"""Pages read before the rate is projected (the first ones arrive together: reads run in
parallel)."""

PREFIX_READ_SHARE = 0.25
"""At most this share of an invocation's time goes to reading back the pages walked before."""
PREFIX_READ_MIN_SECONDS = 60.0
"""...and only an invocation with at least this long left reads them."""


@dataclass
class WalkStep:
    pleo: Pleo
    checkpoints: CheckpointStore
    archive: ScopeArchive
    observer: StepObserver
    settings: ServiceSettings

    def walk(
        self,
        state: WalkState,
        budget: Budget,
        stats: InvocationStats,
        walk_slice: WalkSlice | None = None,
    ) -> tuple[WalkState, WalkOutcome, ScopeBuilder | None]:
        builder = self._builder(state, budget, walk_slice)
        pipeline = WalkPipeline(
            state,
            self.archive,
            self.checkpoints,
            self.observer,
            budget.clock,
            depth=self.settings.walk_pipeline_depth,
            interval=self.settings.checkpoint_interval_seconds,
        )
        walker = PageWalker(
            self.pleo,
            state.job,
            budget,
            start=state.position,
            max_pages=self.settings.max_pages,
            safety_margin=self.settings.safety_margin_seconds,
            reserve=pipeline.reserve_seconds,
            slice_budget=walk_slice.budget if walk_slice else None,
            slice_min_pages=walk_slice.min_pages if walk_slice else 0,
            job_items=walk_slice.job_items if walk_slice else None,
        )
        try:
            for fetched in walker:
                self.observer.on_step("page_fetched", state.job_id, fetched.number)
                pipeline.submit(fetched)
                stats.pages_fetched += 1
                stats.items_seen += len(fetched.page.items)
                if builder is not None:
                    builder.add_items(fetched.page.items)
        except BaseException:
            pipeline.settle()  # the pages fetched before the failure are kept
            raise
        state = pipeline.drain()  # the reply waits for the pages in flight
        assert walker.outcome is not None  # set whenever iteration ends without raising
        return state, walker.outcome, builder

    def _builder(
        self, state: WalkState, budget: Budget, walk_slice: WalkSlice | None
    ) -> ScopeBuilder | None:
        """The scope is built as pages arrive when this invocation sees every page, or when
        it goes on in the loop after a few (a slice's): those are read back first, which
        costs less than reading every page back at the end. Otherwise None: the scope is
        rebuilt from the archive once the walk is complete. Never for a slice: a builder
        tells the service that the invocation walked the job whole and may finish it on its
        own time. Raises `ArchivedPageMissing` when a page walked before is not archived."""
        builder = ScopeBuilder()
        walked = state.pages_fetched
        if walked == 0:
            return builder
        if walk_slice is not None or walked > self.settings.prefix_read_max_pages:
            return None
        # The walk keeps most of the invocation (a loop invocation's minutes), so that time
        # spent reading never stops it walking: short budgets and slow reads leave the pages
        # to the rebuild.
        if not budget.allows(PREFIX_READ_MIN_SECONDS):
            return None
        clock = budget.clock
        deadline = clock.monotonic() + budget.remaining() * PREFIX_READ_SHARE
        pages = self.archive.read_pages(state.job_id, state.run_id, walked)
        try:
            for items in pages:
                if clock.monotonic() > deadline:
                    logger.info("pages walked before left to the rebuild", extra={"pages": walked})
                    return None
                builder.add_items(items)
        finally:
            pages.close()
        return builder

    def rebuild(self, state: WalkState, budget: Budget, *, may_defer: bool) -> Scope | None:
        """The scope from the archived pages, streamed (memory holds the scope and a window
        of pages). With `may_defer` (this invocation already spent time walking), the rate
        measured on the pages read so far is projected over the rest: when it does not fit
        in the budget, None, and a fresh invocation rebuilds."""
        clock = budget.clock
        started = clock.monotonic()
        builder = ScopeBuilder()
        total = state.pages_fetched
        pages = self.archive.read_pages(state.job_id, state.run_id, total)
        try:
            for read, items in enumerate(pages, start=1):
                builder.add_items(items)
                if may_defer and read >= REBUILD_WARM_UP:
                    per_page = (clock.monotonic() - started) / read
                    rest = (total - read) * per_page + self.settings.safety_margin_seconds
                    if not budget.allows(rest):
                        logger.info(
                            "rebuild left to a fresh invocation",
                            extra={"pagesRead": read, "pages": total, "secondsPerPage": per_page},
                        )
                        return None
        finally:
            pages.close()  # stops the reads in flight
        return builder.build()
