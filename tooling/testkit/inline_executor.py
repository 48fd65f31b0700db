"""An Executor that runs each submitted call at once, in the caller's thread: a rate budget's
background reservation becomes a step of the caller, so a simulated fleet stays deterministic."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class InlineExecutor(Executor):
    """Runs a block's reservation at once (one thread, no background work)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future
