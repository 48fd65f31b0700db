"""The chaos soak, light: every fault mix at once on three jobs through the real state
machine, then the one recovery. Nothing stuck, lost, duplicated or wrong; no trigger names
an execution that had ended. (`make chaos` runs each mix apart, longer; `make chaos-docs`
writes its table into docs/robustness.md.)"""

from __future__ import annotations

import random

import pytest

from tooling.reports.chaos import MIXES, Soak
from tooling.testkit.harness import Stack


@pytest.mark.timeout(600)
def test_a_light_chaos_soak_ends_with_every_job_published_once(stack: Stack) -> None:
    everything = MIXES[-1]
    row = Soak(stack, random.Random(9), items=300).run(everything, jobs=3, seconds=20, patience=180)
    # Faults of several kinds reached the walks (which kinds varies with thread timing).
    assert len(row.injected) >= 3, row
    assert (row.done, row.stuck) == (3, 0), row
    assert (row.lost, row.duplicated, row.wrong_scope) == (0, 0, 0), row
    assert row.closed_named == 0, row
