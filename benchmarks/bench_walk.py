"""Benchmark of the walk and of scope building. Prints figures; asserts nothing.

1. Walk a 100,000-item job on the simulator (in its own process, real HTTP on loopback) with
   the product's client + walker + scope builder, against a bare httpx loop that fetches the
   same pages and does nothing else. Rounds alternate; the ratio of medians is the code's own
   overhead per page.
2. Build the scope of 1,000,000 items (in a fresh process, for a clean peak RSS).

    python -m benchmarks.bench_walk [--items 100000] [--scope-items 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from benchmarks.simulator_process import simulator_process
from pleo_scope.auth import CredentialAuth
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.pleo_client import ClientSettings, PleoClient
from pleo_scope.scope import ScopeBuilder
from pleo_scope.walk import PageWalker

JOB = "b0000000-0000-4000-8000-000000000000"
API_KEY = "sim-api-key"
PAGE_SIZE = 100


def bare_httpx_walk(base_url: str) -> int:
    """The floor: follow the cursors with httpx and parse the JSON, nothing more."""
    pages = 0
    with httpx.Client(base_url=base_url, auth=(API_KEY, "")) as http:
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if after is not None:
                params["after"] = after
            body = http.get(f"/v3/export-jobs/{JOB}/items", params=params).json()
            pages += 1
            if not body["pagination"]["hasNextPage"]:
                return pages
            after = body["pagination"]["endCursor"]


def product_walk(base_url: str) -> int:
    client = PleoClient(
        ClientSettings(base_url, page_size=PAGE_SIZE),
        CredentialAuth.of(Credential("apiKey", API_KEY)),
    )
    try:
        walker = PageWalker(client, JobRef(JOB), Budget.unbounded(SystemClock()))
        builder = ScopeBuilder()
        for fetched in walker:
            builder.add_items(fetched.page.items)
        builder.build()
        assert walker.outcome is not None
        return walker.outcome.position.pages_fetched
    finally:
        client.close()


def timed(run: Callable[[str], int], base_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    pages = run(base_url)
    return time.perf_counter() - started, pages


def bench_walk(items: int, rounds: int) -> None:
    with simulator_process(f"{JOB}:{items}") as base_url:
        bare_httpx_walk(base_url)  # warm the simulator and the imports
        bare, ours = [], []
        for _ in range(rounds):
            seconds, bare_pages = timed(bare_httpx_walk, base_url)
            bare.append(seconds)
            seconds, our_pages = timed(product_walk, base_url)
            ours.append(seconds)
            assert bare_pages == our_pages
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"walk of {items:,} items ({bare_pages:,} pages of {PAGE_SIZE}), {rounds} rounds:")
    bare_median = statistics.median(bare)
    print(f"  bare httpx loop   median {bare_median:7.2f} s  {_per_page(bare, bare_pages)}")
    print(
        f"  product walk      median {statistics.median(ours):7.2f} s  {_per_page(ours, our_pages)}"
    )
    print(f"  ratio product/bare: {ratio:.3f}  (target <= 1.10)")


def _per_page(samples: list[float], pages: int) -> str:
    return f"({statistics.median(samples) / pages * 1e3:.2f} ms/page)"


def bench_scope_in_child(items: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_walk", "--scope-child", str(items)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(result.stdout)
    print(f"scope building of {items:,} items (fresh process):")
    print(f"  generating the items alone      {figures['generate_seconds']:6.2f} s")
    print(f"  generating + building the scope {figures['total_seconds']:6.2f} s")
    print(f"  building alone (difference)     {figures['build_seconds']:6.2f} s")
    print(f"  items in scope {figures['in_scope']:,}, scope.jsonl {figures['jsonl_mib']:.0f} MiB")
    peak, start = figures["peak_rss_mib"], figures["start_rss_mib"]
    print(f"  peak RSS {peak:.0f} MiB (at start {start:.0f} MiB; target <= 1024 MiB)")


def scope_child(items: int) -> None:
    from tooling.pleo_sim.jobs import generated_item

    start_rss = _peak_rss_mib()
    page = 1000

    def pages() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, items, page):
            yield [generated_item(JOB, JOB, i) for i in range(start, min(start + page, items))]

    started = time.perf_counter()
    for _ in pages():
        pass
    generate_seconds = time.perf_counter() - started

    started = time.perf_counter()
    builder = ScopeBuilder()
    for items_page in pages():
        builder.add_items(items_page)
    scope = builder.build()
    total_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "generate_seconds": generate_seconds,
                "total_seconds": total_seconds,
                "build_seconds": total_seconds - generate_seconds,
                "in_scope": scope.item_count,
                "jsonl_mib": len(scope.jsonl) / 2**20,
                "peak_rss_mib": _peak_rss_mib(),
                "start_rss_mib": start_rss,
            }
        )
    )


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--scope-items", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scope-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scope_child:
        scope_child(args.scope_child)
        return
    bench_walk(args.items, args.rounds)
    bench_scope_in_child(args.scope_items)


if __name__ == "__main__":
    main()
