"""The storm benchmark's harness, kept from rotting: a tiny storm (5 companies, 6 jobs, a few
pages each) through the same entry points, in a process of its own (the function's module
reads its stack once). Its figures are not asserted, only the line's shape and that every
job was published without a 429 (the simulator's own count)."""

from __future__ import annotations

import re
import subprocess
import sys

from tooling import ROOT

LINE = re.compile(
    r"fleet: companies=(\d+) jobs=(\d+) throttled=(\d+) max_rate_ratio=[\d.]+"
    r" makespan_ratio=[\d.]+ small_p95_s=[\d.]+ ddb_per_request=[\d.]+"
)


def test_a_tiny_storm_runs_through_the_admission_queue_to_published() -> None:
    run = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "benchmarks.bench_fleet",
            *("--small", "3", "--large", "1", "--multi-jobs", "2"),
            *("--scale", "0.01", "--slice", "1", "--timeout", "240"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    *_, summary, last = run.stdout.strip().splitlines()
    assert "0 unfinished" in summary
    match = LINE.fullmatch(last)
    assert match is not None, last
    assert match.groups() == ("5", "6", "0")
