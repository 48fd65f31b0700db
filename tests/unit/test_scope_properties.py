"""Property: for any items, any paging and any interruption, the walk's scope is the reference
scope, byte for byte."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.scope import ScopeBuilder
from pleo_scope.walk import PageWalker
from tests.support import FakeClock, make_client, reference_scope
from tooling.pleo_sim import PleoSimulator, SimJob
from tooling.pleo_sim.jobs import make_item
from tooling.pleo_sim.transport import in_memory_transport

JOB = "22222222-0000-4000-8000-000000000002"
STATUSES = ["pending", "in_progress", "successful", "failed", "abandoned", "on_hold"]
ID_POOL = [f"{n:08x}-0000-4000-8000-{n * 7919:012x}" for n in range(40)]


@st.composite
def observations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Items with repeated ids (status changes) and arbitrary extra fields."""
    count = draw(st.integers(0, 60))
    items = []
    for _ in range(count):
        extra = draw(st.dictionaries(st.sampled_from(["memo", "zz", "Ω"]), st.text(max_size=5)))
        items.append(
            make_item(JOB, draw(st.sampled_from(ID_POOL)), draw(st.sampled_from(STATUSES)), **extra)
        )
    return items


def page_sizes(total: int) -> st.SearchStrategy[list[int]]:
    # Sizes from 0 (an empty page that still has a next page) to 12; enough to cover `total`.
    return st.lists(st.integers(0, 12), min_size=total + 1, max_size=total + 1)


# One simulator and client for all examples (an httpx client is costly to build); each walk
# gets a job of its own.
SIMULATOR = PleoSimulator()
CLIENT = make_client(transport=in_memory_transport(SIMULATOR))
JOB_IDS = itertools.count()


def walk(items: list[dict[str, Any]], sizes: list[int], interrupt_after: int | None) -> bytes:
    job_id = f"{JOB}-{next(JOB_IDS)}"
    SIMULATOR.add_job(SimJob(job_id, items=items, page_sizes=sizes))
    client = CLIENT
    budget = Budget.unbounded(FakeClock())
    builder = ScopeBuilder()
    walker = PageWalker(client, JobRef(job_id), budget, max_pages=10_000)
    for fetched in walker:
        builder.add_items(fetched.page.items)
        if fetched.number == interrupt_after and fetched.page.has_next_page:
            # Crash here; a new walker resumes from the checkpointed position.
            walker = PageWalker(
                client, JobRef(job_id), budget, start=fetched.next_position, max_pages=10_000
            )
            for rest in walker:
                builder.add_items(rest.page.items)
            break
    return builder.build().jsonl


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), items=observations())
def test_scope_equals_reference_for_any_paging_and_interruption(
    data: st.DataObject, items: list[dict[str, Any]]
) -> None:
    expected = reference_scope(items)
    sizes_a = data.draw(page_sizes(len(items)), label="sizes_a")
    sizes_b = data.draw(page_sizes(len(items)), label="sizes_b")
    interrupt_after = data.draw(st.integers(1, 8), label="interrupt_after")
    assert walk(items, sizes_a, None) == expected
    assert walk(items, sizes_b, None) == expected
    assert walk(items, sizes_a, interrupt_after) == expected
