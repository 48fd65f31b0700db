"""Persist walked pages behind the walk, so that only the Pleo request is on its critical
path: each page is archived by a small pool of workers, and one checkpointer moves the
checkpoint over the pages that are archived, in page order, recording their cursors (the
durable half of the loop guard) in the same write.

Guarantees:
- Bounded: at most `depth` pages are fetched and not yet checkpointed; `submit` waits for
  room (memory stays flat, and a crash loses at most those pages: the next invocation
  fetches them again from the checkpoint).
- The checkpoint never claims a page that is not archived, nor without its cursor.
  One write covers the pages done within `interval` seconds of the last one (sooner when
  half of `depth` is waiting, and at once when the walk closes: a hand-over or the end), so
  a walk writes its checkpoint about once per `interval` however fast its pages come; the
  write of the last page also ends the walk (`complete`).
- The first failure in the pipeline (S3, DynamoDB, a repeated cursor, a lost lease, the
  observer) stops the checkpoint where it is and is raised to the walk as it was raised.
  Nothing is left running: queued work is cancelled and running work waited for before it
  is raised, so that no late write can land after the next invocation has begun. When the
  walk itself fails, the pages it fetched are persisted first (`settle`).

`depth` 0 runs every step in the caller's thread, one page at a time (the serial way).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from pleo_scope.clock import Clock
from pleo_scope.ports import CheckpointStore, FollowedCursor, ScopeArchive, StepObserver, WalkState
from pleo_scope.walk import FetchedPage

WORKERS = 4  # page writes in parallel: enough to hide S3 round trips
MAX_PAGES_PER_CHECKPOINT = 99  # with the walk record: DynamoDB's 100 writes per transaction


class WalkPipeline:
    def __init__(
        self,
        state: WalkState,
        archive: ScopeArchive,
        checkpoints: CheckpointStore,
        observer: StepObserver,
        clock: Clock,
        *,
        depth: int,
        workers: int = WORKERS,
        interval: float = 0.0,
    ) -> None:
        self._state = state
        self._archive = archive
        self._checkpoints = checkpoints
        self._observer = observer
        self._clock = clock
        self._depth = depth
        self._interval = interval
        self._lock = threading.Condition()
        self._submitted = state.pages_fetched  # highest page number handed in
        self._checkpointed = state.pages_fetched
        self._done: dict[int, FetchedPage] = {}  # persisted, waiting for the checkpoint
        self._started_at: dict[int, float] = {}
        self._slowest = 0.0
        self._error: BaseException | None = None
        self._closing = False
        self._stopped = False
        self._pool: ThreadPoolExecutor | None = None
        self._checkpointer: threading.Thread | None = None
        if depth > 0:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="walk-page")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="walk-checkpoint", daemon=True
            )
            self._checkpointer.start()

    # -- the walk's side -----------------------------------------------------------------

    def submit(self, fetched: FetchedPage) -> None:
        """Hand a fetched page over; waits while `depth` pages are in flight. Raises the
        pipeline's first failure, if any."""
        if self._pool is None:
            self._persist(fetched)
            self._state = self._advance([fetched])
            return
        with self._lock:
            while self._error is None and self._submitted - self._checkpointed >= self._depth:
                self._lock.wait()
            self._raise_failure()
            self._submitted = fetched.number
            self._started_at[fetched.number] = self._clock.monotonic()
        self._pool.submit(self._work, fetched)

    def reserve_seconds(self) -> float:
        """Time the pages in flight may still need: the slowest page so far, from its
        submission to its checkpoint (queueing behind others included)."""
        with self._lock:
            return self._slowest if self._submitted > self._checkpointed else 0.0

    def drain(self) -> WalkState:
        """Wait until every submitted page is checkpointed; the checkpoint's state."""
        if self._pool is not None:
            with self._lock:
                self._closing = True
                self._lock.notify_all()
                while self._error is None and self._checkpointed < self._submitted:
                    self._lock.wait()
            self._stop()
            self._raise_failure()
        return self._state

    def settle(self) -> None:
        """The walk failed (Pleo, the loop guard, a crash in the walk's thread): keep what
        it fetched, as the serial walk did, then stop. A failure of the pipeline itself
        stops it where it is; the walk's own failure is the one raised."""
        if self._pool is not None:
            with self._lock:
                self._closing = True
                self._lock.notify_all()
                while self._error is None and self._checkpointed < self._submitted:
                    self._lock.wait()
            self._stop()

    # -- workers -------------------------------------------------------------------------

    def _work(self, fetched: FetchedPage) -> None:
        with self._lock:
            if self._error is not None or self._stopped:
                return
        try:
            self._persist(fetched)
        except BaseException as error:  # handed to the walk, which raises it
            self._fail(error)
            return
        with self._lock:
            self._done[fetched.number] = fetched
            self._lock.notify_all()

    def _persist(self, fetched: FetchedPage) -> None:
        state = self._state
        self._archive.put_page(state.job_id, state.run_id, fetched.number, fetched.page.raw)
        self._observer.on_step("page_written", state.job_id, fetched.number)

    def _checkpoint_loop(self) -> None:
        last_write = self._clock.monotonic()
        while True:
            with self._lock:
                while not self._stopping():
                    if (self._checkpointed + 1) in self._done:
                        wait = self._wait_to_coalesce(last_write)
                        if wait <= 0:
                            break
                        self._lock.wait(wait)
                        continue
                    if self._closing and self._checkpointed >= self._submitted:
                        return
                    self._lock.wait()
                if self._stopping():
                    return
                pages: list[FetchedPage] = []
                while (self._checkpointed + len(pages) + 1) in self._done and (
                    len(pages) < MAX_PAGES_PER_CHECKPOINT
                ):
                    pages.append(self._done.pop(self._checkpointed + len(pages) + 1))
            try:
                state = self._advance(pages)
            except BaseException as error:  # handed to the walk, which raises it
                self._fail(error)
                return
            now = last_write = self._clock.monotonic()
            with self._lock:
                self._state = state
                self._checkpointed = pages[-1].number
                for page in pages:
                    started = self._started_at.pop(page.number, now)
                    self._slowest = max(self._slowest, now - started)
                self._lock.notify_all()

    def _wait_to_coalesce(self, last_write: float) -> float:
        """Seconds the next checkpoint write waits for more pages (under the lock): none when
        the walk is closing or half the pipeline's room is taken (the walk must not block on
        it), else what is left of the interval since the last write."""
        if self._closing or self._submitted - self._checkpointed >= max(1, self._depth // 2):
            return 0.0
        return last_write + self._interval - self._clock.monotonic()

    def _advance(self, pages: list[FetchedPage]) -> WalkState:
        # The durable half of the loop guard (the walker's in-memory half caught loops
        # within this invocation already): a cursor followed in an earlier invocation.
        followed = [
            FollowedCursor(p.page.end_cursor, p.number)
            for p in pages
            if p.page.has_next_page and p.page.end_cursor
        ]
        last = pages[-1]
        state = self._checkpoints.advance(
            self._state,
            last.next_position,
            complete=not last.page.has_next_page,
            followed=followed,
        )
        for page in pages:
            self._observer.on_step("checkpoint_written", state.job_id, page.number)
        return state

    # -- stopping ------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._error is not None or self._stopped

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
            self._lock.notify_all()

    def _stop(self) -> None:
        assert self._pool is not None
        assert self._checkpointer is not None
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._checkpointer.join()

    def _raise_failure(self) -> None:
        error = self._error
        if error is not None:
            raise error
