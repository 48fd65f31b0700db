"""Benchmark of the managed-OAuth refresh protocol (pleo_scope/oauth.py). Prints figures;
asserts nothing.

The simulator and moto's server each run in a process of their own; the registry (a table
with the design's key) and the tokens' KMS key are on moto. Measured in one run:

1. The walk: the same number of pages of equal jobs through the product's Pleo client, rounds
   alternating between
   - baseline: a static access token (what a deployment without managed OAuth sends);
   - oauth: a managed grant whose token outlives the walk (the protocol's cost per request
     when nothing refreshes: the refresher's in-process cache);
   - oauth, expiring: a grant whose access token lasts `--lifetime` seconds, refreshed ahead
     of expiry on the walk's own thread, i.e. on its critical path.
   Seconds per page (median of the rounds) with the ratio to the baseline; refreshes per walk;
   the time each refresh added to the request that made it; AWS calls per refresh.
2. Contended refreshes: `--processes` refreshers (threads, each its own refresher, registry
   and lease owner: a process each) asking past the same token at once, `--contended-rounds`
   times: token-endpoint calls per round, AWS calls per refresh across the fleet (the
   waiters' polls included) and the round's wall time, against one refresher alone.

    python -m benchmarks.bench_oauth_refresh [--pages 1500] [--rounds 3] [--lifetime 2]
        [--processes 50] [--contended-rounds 3] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from benchmarks.aws_calls import AwsCalls
from benchmarks.processes import moto_process
from benchmarks.simulator_process import simulator_process
from pleo_scope.auth import CredentialAuth
from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.clock import Budget, SystemClock
from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential
from pleo_scope.oauth import OAuthRefresher
from pleo_scope.oauth_auth import OAuthAuth
from pleo_scope.pleo_client import ClientSettings, PleoClient
from pleo_scope.tenants import OAuthCredential, StoredToken, Tenant
from pleo_scope.token_endpoint import (
    ClientCredentials,
    HttpTokenEndpoint,
    StaticClientCredentials,
    TokenEndpointSettings,
)
from tooling.pleo_sim.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tooling.reports.docs_writer import DocSection
from tooling.testkit.local_stack import LOCAL_ENV, REGION

SECTION = DocSection("performance.md", "bench-oauth-refresh")
PAGE_SIZE = 100
STATIC_TOKEN = "bench-static-access-token"  # noqa: S105 - the simulator's, for the baseline


@dataclass
class Bench:
    pleo_url: str
    aws: str
    table: str
    key: str
    calls: AwsCalls
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = httpx.Client(base_url=self.pleo_url, timeout=10)

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service, endpoint_url=self.aws, region_name=REGION
        )

    def company_with_job(self, pages: int) -> tuple[str, str]:
        company, job = str(uuid.uuid4()), str(uuid.uuid4())
        self.admin.post(
            "/_sim/companies", json={"id": company, "accessTokens": [STATIC_TOKEN]}
        ).raise_for_status()
        self.admin.post(
            "/_sim/jobs",
            json={"id": job, "generatedItems": pages * PAGE_SIZE, "companyId": company},
        ).raise_for_status()
        return company, job

    def onboard(self, company: str, lifetime: float) -> None:
        """The company installs the app; onboarding writes the refresh token only."""
        reply = self.admin.post(
            f"/_sim/companies/{company}/grants", json={"accessLifetime": lifetime}
        )
        reply.raise_for_status()
        credential = OAuthCredential(StoredToken(plain=reply.json()["refreshToken"]))
        DynamoTenantRegistry(self.client("dynamodb"), self.table).put(
            Tenant(company, "active", credential)
        )

    def refresher(self, dynamodb: Any = None, kms: Any = None) -> OAuthRefresher:
        endpoint = HttpTokenEndpoint(
            TokenEndpointSettings(f"{self.pleo_url}/oauth/token"),
            StaticClientCredentials(ClientCredentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)),
        )
        return OAuthRefresher(
            DynamoTenantRegistry(dynamodb or self.client("dynamodb"), self.table),
            KmsTokenCipher(kms or self.client("kms"), self.key),
            endpoint,
        )

    def token_calls(self) -> int:
        count: int = self.admin.get("/_sim/oauth/requests").json()["count"]
        return count


class TimedAuth(httpx.Auth):
    """The walk's Auth around the real one, timing how long each request waits for its
    credential (a refresh included) and telling refreshes apart."""

    def __init__(self, inner: httpx.Auth, refresher: OAuthRefresher | None) -> None:
        self._inner = inner
        self._refresher = refresher
        self.refresh_seconds: list[float] = []
        self.lookup_seconds: list[float] = []

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        before = self._refresher.refreshes if self._refresher else 0
        start = time.perf_counter()
        flow = self._inner.sync_auth_flow(request)
        outgoing = next(flow)
        spent = time.perf_counter() - start
        refreshed = self._refresher is not None and self._refresher.refreshes > before
        (self.refresh_seconds if refreshed else self.lookup_seconds).append(spent)
        while True:
            response = yield outgoing
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return


@dataclass
class Walk:
    seconds: float
    pages: int
    refreshes: int
    refresh_seconds: list[float]
    aws_calls: Counter[str]
    retries: int


def walk(
    bench: Bench, job: str, pages: int, auth: TimedAuth, refresher: OAuthRefresher | None
) -> Walk:
    client = PleoClient(ClientSettings(bench.pleo_url, page_size=PAGE_SIZE), auth)
    budget = Budget.unbounded(SystemClock())
    calls_before = Counter(bench.calls.calls)
    refreshes_before = refresher.refreshes if refresher else 0
    start = time.perf_counter()
    after: str | None = None
    for _ in range(pages):
        page = client.get_items_page(JobRef(job), after, budget)
        after = page.end_cursor
    seconds = time.perf_counter() - start
    client.close()
    calls = Counter(bench.calls.calls)
    calls.subtract(calls_before)
    return Walk(
        seconds,
        pages,
        (refresher.refreshes if refresher else 0) - refreshes_before,
        list(auth.refresh_seconds),
        +calls,
        client.stats.retries,
    )


def run_walks(bench: Bench, pages: int, rounds: int, lifetime: float) -> dict[str, list[Walk]]:
    variants: dict[str, Callable[[], tuple[TimedAuth, OAuthRefresher | None, str]]] = {}
    _, static_job = bench.company_with_job(pages)
    variants["baseline (static token)"] = lambda: (
        TimedAuth(CredentialAuth.of(Credential("accessToken", STATIC_TOKEN)), None),
        None,
        static_job,
    )
    long_company, long_job = bench.company_with_job(pages)
    bench.onboard(long_company, 86_400)
    long_refresher = bench.refresher()
    long_refresher.access_token(long_company)  # the first token, before any timing
    variants["oauth, token outlives the walk"] = lambda: (
        TimedAuth(OAuthAuth(long_refresher, long_company), long_refresher),
        long_refresher,
        long_job,
    )
    short_company, short_job = bench.company_with_job(pages)
    bench.onboard(short_company, lifetime)
    short_refresher = bench.refresher()
    short_refresher.access_token(short_company)
    variants[f"oauth, token lasts {lifetime:g} s"] = lambda: (
        TimedAuth(OAuthAuth(short_refresher, short_company), short_refresher),
        short_refresher,
        short_job,
    )
    results: dict[str, list[Walk]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, make in variants.items():
            auth, refresher, job = make()
            results[name].append(walk(bench, job, pages, auth, refresher))
    return results


@dataclass
class Contended:
    processes: int
    rounds: int
    token_calls: list[int]
    round_seconds: list[float]
    aws_calls: Counter[str]


def all_at_once(refreshers: list[OAuthRefresher], company: str, rejected: int) -> float:
    """Every refresher asks past version `rejected` at the same moment; the wall time."""
    barrier = threading.Barrier(len(refreshers))
    failures: list[BaseException] = []

    def ask(refresher: OAuthRefresher) -> None:
        barrier.wait()
        try:
            refresher.access_token(company, rejected=rejected)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=ask, args=(r,)) for r in refreshers]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a refresher failed: {type(failures[0]).__name__}")
    return time.perf_counter() - start


def run_contended(bench: Bench, processes: int, rounds: int) -> tuple[Contended, Contended]:
    results = []
    for count in (1, processes):
        company, _ = bench.company_with_job(1)
        bench.onboard(company, 86_400)
        dynamodb, kms = bench.client("dynamodb"), bench.client("kms")
        refreshers = [bench.refresher(dynamodb, kms) for _ in range(count)]
        token_calls: list[int] = []
        seconds: list[float] = []
        calls_before = Counter(bench.calls.calls)
        for version in range(rounds):
            start_calls = bench.token_calls()
            seconds.append(all_at_once(refreshers, company, version))
            token_calls.append(bench.token_calls() - start_calls)
        calls = Counter(bench.calls.calls)
        calls.subtract(calls_before)
        results.append(Contended(count, rounds, token_calls, seconds, +calls))
    return results[0], results[1]


def by_service(calls: Counter[str], service: str) -> int:
    return sum(count for name, count in calls.items() if name.startswith(f"{service}."))


def report(
    walks: dict[str, list[Walk]], alone: Contended, fleet: Contended, lifetime: float
) -> str:
    lines = [
        "| walk (same pages, same run) | s per page (median) | ratio | refreshes per walk |"
        " ms added per refresh (median) | DynamoDB / KMS calls per refresh |",
        "|---|---|---|---|---|---|",
    ]
    baseline = statistics.median(w.seconds / w.pages for w in next(iter(walks.values())))
    for name, runs in walks.items():
        per_page = statistics.median(w.seconds / w.pages for w in runs)
        refreshes = sum(w.refreshes for w in runs)
        added = [s for w in runs for s in w.refresh_seconds]
        calls: Counter[str] = Counter()
        for w in runs:
            calls.update(w.aws_calls)
        dynamodb, kms = by_service(calls, "dynamodb"), by_service(calls, "kms")
        per_refresh = (
            f"{dynamodb / refreshes:.1f} / {kms / refreshes:.1f}"
            if refreshes
            else f"{dynamodb} / {kms} in all"
        )
        added_ms = f"{statistics.median(added) * 1000:.1f} ms" if added else "-"
        lines.append(
            f"| {name} | {per_page * 1000:.2f} ms | {per_page / baseline:.3f} |"
            f" {refreshes / len(runs):.1f} | {added_ms} | {per_refresh} |"
        )
    page_ms = baseline * 1000
    lines += [
        "",
        "| refreshers asking past one token at once | token calls per round |"
        " DynamoDB calls per refresh | KMS calls per refresh | round (median) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    alone_round = statistics.median(alone.round_seconds)
    for result in (alone, fleet):
        refreshes = sum(result.token_calls)
        lines.append(
            f"| {result.processes} | {', '.join(map(str, result.token_calls))} |"
            f" {by_service(result.aws_calls, 'dynamodb') / refreshes:.1f} |"
            f" {by_service(result.aws_calls, 'kms') / refreshes:.1f} |"
            f" {statistics.median(result.round_seconds) * 1000:.0f} ms |"
            f" {statistics.median(result.round_seconds) / alone_round:.1f} |"
        )
    lines += [
        "",
        f"A page request of the baseline took {page_ms:.2f} ms (median); access tokens of"
        f" {lifetime:g} s are refreshed {0.2 * lifetime:g} s ahead (a fifth of their lifetime).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lifetime", type=float, default=2.0, help="short tokens' seconds")
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--contended-rounds", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help="into docs/performance.md")
    args = parser.parse_args()
    os.environ.update(LOCAL_ENV)
    with simulator_process() as pleo_url, moto_process() as aws:
        calls = AwsCalls()
        calls.install(existing=False)
        setup = boto3.session.Session().client("dynamodb", endpoint_url=aws, region_name=REGION)
        table = f"tenants-{uuid.uuid4().hex[:8]}"
        setup.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "companyId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "companyId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        kms = boto3.session.Session().client("kms", endpoint_url=aws, region_name=REGION)
        key = kms.create_key(Description="tenant tokens")["KeyMetadata"]["Arn"]
        bench = Bench(pleo_url, aws, table, key, calls)
        walks = run_walks(bench, args.pages, args.rounds, args.lifetime)
        alone, fleet = run_contended(bench, args.processes, args.contended_rounds)
    text = report(walks, alone, fleet, args.lifetime)
    command = "python -m benchmarks.bench_oauth_refresh"
    print(text)
    if args.write_docs:
        SECTION.write(
            f"Printed by `{command}` (simulator and moto in processes of their own):\n\n{text}"
        )


if __name__ == "__main__":
    main()
