"""Progress for the tools: tqdm's bars on a terminal; plain lines, at most one every few
seconds, when stderr is a pipe or a CI log (where a bar's carriage returns would pile up
into one line thousands of characters long)."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from tqdm import tqdm


class Progress(Protocol):
    n: float

    def update(self, n: float = 1) -> bool | None: ...

    def set_description(self, desc: str | None = None, refresh: bool | None = True) -> None: ...

    def close(self) -> None: ...


class LineProgress:
    """`desc: n/total unit` on a line of its own, every `interval` seconds and at the end."""

    def __init__(
        self,
        total: int,
        unit: str,
        desc: str,
        *,
        interval: float = 5.0,
        stream: TextIO | None = None,
    ) -> None:
        self.n: float = 0
        self.total = total
        self.unit = unit
        self.desc = desc
        self.interval = interval
        self.stream = stream or sys.stderr
        self._started = self._last = time.monotonic()
        self._closed = False

    def update(self, n: float = 1) -> bool | None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._print()
        return None

    def set_description(self, desc: str | None = None, refresh: bool | None = True) -> None:
        self.desc = desc or ""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print(done=True)

    def _print(self, *, done: bool = False) -> None:
        self._last = time.monotonic()
        elapsed = self._last - self._started
        state = "done" if done else "..."
        print(
            f"{self.desc}: {self.n:,.0f}/{self.total:,} {self.unit} ({elapsed:.0f} s) {state}",
            file=self.stream,
            flush=True,
        )


def progress(total: int, unit: str, desc: str, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if stream.isatty():
        bar: Progress = tqdm(total=total, unit=unit, desc=desc, file=stream)
        return bar
    return LineProgress(total, unit, desc, stream=stream)
