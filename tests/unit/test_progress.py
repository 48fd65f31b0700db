"""Progress written to a pipe or a CI log is short lines, not one carriage-returned line."""

from __future__ import annotations

import io

from tooling.testkit.progress import LineProgress, progress


def test_progress_to_a_pipe_is_plain_lines() -> None:
    stream = io.StringIO()  # not a TTY, as a pipe or a CI log
    bar = progress(total=1000, unit="page", desc="walk", stream=stream)
    assert isinstance(bar, LineProgress)
    bar.interval = 0  # a line for every update here
    for _ in range(1000):
        bar.update(1)
    bar.set_description("walk (Step Functions)")
    bar.close()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 1001
    assert max(len(line) for line in lines) < 100
    assert lines[0].startswith("walk: 1/1,000 page")
    assert lines[-1].startswith("walk (Step Functions): 1,000/1,000 page")
    assert lines[-1].endswith("done")


def test_progress_lines_are_spaced_in_time() -> None:
    stream = io.StringIO()
    bar = LineProgress(100, "msg", "publish", interval=3600, stream=stream)
    for _ in range(100):
        bar.update(1)
    bar.close()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[-1]]
    assert "100/100 msg" in stream.getvalue()
