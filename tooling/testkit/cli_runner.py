"""click's CliRunner for a CLI run while the in-process function works on other threads.

CliRunner captures a command's output by swapping `sys.stdout` for the whole process. On the
local stack moto's Lambda runs the function in this process, on its own threads, at the same
time as the command (a `status --watch` follows a walk that Step Functions drives), and
whatever the function prints (Powertools' EMF metrics: one JSON line per invocation) would
land in the command's output, where Lambda would have written it to the function's log.
Here the captured stdout takes the writes of the command's thread only; other threads write
where they wrote before the command started.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, TextIO, cast

from click import testing


class _ThisThreadOnly:
    """A text stream that is `captured` for one thread and `elsewhere` for every other."""

    def __init__(self, captured: TextIO, elsewhere: TextIO) -> None:
        self._captured, self._elsewhere = captured, elsewhere
        self._owner = threading.get_ident()

    def _target(self) -> TextIO:
        return self._captured if threading.get_ident() == self._owner else self._elsewhere

    def write(self, text: str) -> int:
        return self._target().write(text)

    def writelines(self, lines: list[str]) -> None:
        self._target().writelines(lines)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, isatty...: click reads them
        return getattr(self._captured, name)


class CliRunner(testing.CliRunner):
    """Captures what the command's thread writes to stdout, not what other threads print."""

    @contextmanager
    def isolation(
        self,
        input: str | bytes | IO[Any] | None = None,
        env: Mapping[str, str | None] | None = None,
        color: bool = False,
    ) -> Iterator[tuple[io.BytesIO, io.BytesIO, io.BytesIO]]:
        elsewhere = sys.stdout
        with super().isolation(input, env, color) as streams:
            # stderr stays whole: only the command writes there (its progress bar, with
            # tqdm's monitor thread), the function's logs and metrics go to stdout.
            sys.stdout = cast(TextIO, _ThisThreadOnly(sys.stdout, elsewhere))
            yield streams
