"""The walk step of an invocation: fetch pages from the checkpoint on, archive and checkpoint
each, and rebuild the scope from the archive when the walk spanned several invocations."""

from __future__ import annotations

from dataclasses import dataclass

from pleo_scope.clock import Budget
from pleo_scope.invocation import InvocationStats, ServiceSettings
from pleo_scope.pleo_client import PleoClient
from pleo_scope.ports import CheckpointStore, ScopeArchive, StepObserver, WalkState
from pleo_scope.scope import Scope, ScopeBuilder
from pleo_scope.walk import PageWalker, WalkOutcome


@dataclass
class WalkStep:
    pleo: PleoClient
    checkpoints: CheckpointStore
    archive: ScopeArchive
    observer: StepObserver
    settings: ServiceSettings

    def walk(
        self, state: WalkState, budget: Budget, stats: InvocationStats
    ) -> tuple[WalkState, WalkOutcome, ScopeBuilder | None]:
        # Build the scope as pages arrive only when this invocation sees every page;
        # otherwise it is rebuilt from the archived pages once the walk is complete.
        builder = ScopeBuilder() if state.pages_fetched == 0 else None
        walker = PageWalker(
            self.pleo,
            state.job_id,
            budget,
            start=state.position,
            cursors=self.checkpoints.cursors(state),
            max_pages=self.settings.max_pages,
            safety_margin=self.settings.safety_margin_seconds,
        )
        for fetched in walker:
            self.archive.put_page(state.job_id, state.run_id, fetched.number, fetched.page.raw)
            self.observer.on_step("page_written", state.job_id, fetched.number)
            state = self.checkpoints.advance(state, fetched.next_position)
            self.observer.on_step("checkpoint_written", state.job_id, fetched.number)
            stats.pages_fetched += 1
            stats.items_seen += len(fetched.page.items)
            if builder is not None:
                builder.add_items(fetched.page.items)
        assert walker.outcome is not None  # set whenever iteration ends without raising
        return state, walker.outcome, builder

    def rebuild_seconds(self, state: WalkState) -> float:
        per_page = self.settings.rebuild_seconds_per_page
        return self.settings.safety_margin_seconds + state.pages_fetched * per_page

    def rebuild(self, state: WalkState) -> Scope:
        builder = ScopeBuilder()
        for items in self.archive.read_pages(state.job_id, state.run_id, state.pages_fetched):
            builder.add_items(items)
        return builder.build()
