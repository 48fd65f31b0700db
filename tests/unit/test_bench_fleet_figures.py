"""The storm benchmark's own arithmetic (benchmarks/bench_fleet.py, lambda_pool.py): what its
profile counts and which unfinished jobs make S infinite, on hand-made replies."""

from __future__ import annotations

import io
import multiprocessing
from typing import Any

from benchmarks.bench_fleet import Observed, measure, profile
from benchmarks.lambda_pool import EXITED, ContainerPool, Reply, _Container
from benchmarks.storm_shape import Company, StormShape
from tooling.pleo_sim import SimJob


def reply(event: dict[str, Any], done: list[tuple[str, float]] | None = None) -> Reply:
    return Reply(
        event=event,
        result={},
        error=None,
        started=0.0,
        seconds=1.0,
        done=done or [],
        aws_calls=5,
        aws_seconds=0.5,
        cpu_seconds=0.1,
        container=1,
        serial=1,
        store_calls=0,
    )


def queued(job_id: str) -> dict[str, Any]:
    return {"Records": [{"body": f'{{"detail": {{"jobId": "{job_id}"}}}}'}]}


def companies() -> list[Company]:
    small = Company("c-small", "small", "k1", [SimJob("small-1", generated_items=300)])
    other = Company("c-small-2", "small", "k2", [SimJob("small-2", generated_items=300)])
    large = Company("c-large", "large", "k3", [SimJob("large-1", generated_items=20_000)])
    return [small, other, large]


def test_only_a_loop_state_counts_as_going_on_in_the_loop() -> None:
    replies = [
        reply(queued("small-1")),
        reply({"jobId": "small-1", "continuation": {"phase": "walking"}}),
        # The baseline's trigger: neither queued nor a loop state.
        reply({"detail": {"jobId": "small-2"}}),
    ]

    line = profile(replies, companies())

    assert "1 of 2 went on in the loop" in line


def observed_done(done: dict[str, float]) -> Observed:
    observed = Observed(io.StringIO())
    observed.done.update(done)
    return observed


def storm_figures(done: dict[str, float]) -> tuple[float, int]:
    sent = {"small-1": 0.0, "small-2": 0.0, "large-1": 0.0}
    result = measure(
        StormShape(),
        companies(),
        [],
        observed_done(done),
        sent,
        0.0,
        10.0,
        0,
        1,
        baseline=False,
    )
    return result.small_p95, result.unfinished


def test_an_unfinished_large_job_leaves_the_small_jobs_p95_finite() -> None:
    assert storm_figures({"small-1": 2.0, "small-2": 4.0}) == (4.0, 1)


def test_an_unfinished_small_job_makes_the_small_jobs_p95_infinite() -> None:
    assert storm_figures({"small-1": 2.0, "large-1": 9.0}) == (float("inf"), 1)


def test_a_container_that_exits_mid_invocation_answers_a_runtime_error() -> None:
    heard: list[Reply] = []
    pool = ContainerPool(0.0, on_reply=heard.append)
    parent, child = multiprocessing.Pipe()
    child.close()  # the container's end: gone, as at the storm's teardown
    process = multiprocessing.get_context("spawn").Process(target=print)
    pool._idle.append(_Container(1, process, parent))

    answer = pool.invoke({"jobId": "large-1"}, 900)

    assert (answer.error, answer.result["errorType"]) == (EXITED, EXITED)
    assert heard == [answer]
    assert (pool.running, pool._idle) == (0, [])  # not reused
