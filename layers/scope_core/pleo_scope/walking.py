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
        # Build the scope as pages arrive only when this invocation sees every page;
        # otherwise it is rebuilt from the archived pages once the walk is complete.
        builder = ScopeBuilder() if state.pages_fetched == 0 else None
        pipeline = WalkPipeline(
            state,
            self.archive,
            self.checkpoints,
            self.checkpoints.cursors(state),
            self.observer,
            budget.clock,
            depth=self.settings.walk_pipeline_depth,
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
