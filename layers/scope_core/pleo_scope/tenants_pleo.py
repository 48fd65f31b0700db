"""The Pleo port of a deployment with many tenants: every call goes out with the job's
company's own client (its credential, as an httpx.Auth, and its rate budget), made once per
process and company and reused (connections, cached secrets, the OAuth token).

The company is resolved in the registry at each job check (`get_job`: the first call of
every invocation, and the check before publishing), so a tenant an operator disabled, or
whose grant Pleo refused, stops at the next invocation; the pages of the walk use the client
of that check. A client whose registry record changed what it is built from (another secret,
another kind, another rate limit) is replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from pleo_scope.clock import Budget
from pleo_scope.contract import JobRef
from pleo_scope.models import ExportJob, ItemPage
from pleo_scope.ports import PagePace, Pleo, PleoStats
from pleo_scope.tenants_access import TenantAccess, TenantResolver

Connect = Callable[[TenantAccess], Pleo]
"""Makes the Pleo client of one tenant's access (the wiring's: credential, budget)."""


@dataclass
class _Client:
    key: tuple[object, ...]
    pleo: Pleo


class TenantPleo:
    def __init__(self, tenants: TenantResolver, connect: Connect) -> None:
        self._tenants = tenants
        self._connect = connect
        self._clients: dict[str | None, _Client] = {}
        self._retired = PleoStats()
        """What the clients replaced so far counted: the totals never go back."""
        self._lock = threading.Lock()

    @property
    def stats(self) -> PleoStats:
        with self._lock:
            every = [self._retired, *(client.pleo.stats for client in self._clients.values())]
        total = PleoStats()
        for name in (f.name for f in fields(PleoStats)):
            setattr(total, name, sum(getattr(stats, name) for stats in every))
        return total

    def get_job(self, job: JobRef, budget: Budget) -> ExportJob:
        return self._client(job, resolve=True).get_job(job, budget)

    def get_items_page(self, job: JobRef, after: str | None, budget: Budget) -> ItemPage:
        return self._client(job, resolve=False).get_items_page(job, after, budget)

    def pace(self, job: JobRef) -> PagePace:
        return self._client(job, resolve=False).pace(job)

    def _client(self, job: JobRef, *, resolve: bool) -> Pleo:
        company = job.company_id
        with self._lock:
            client = self._clients.get(company)
        if client is not None and not resolve:
            return client.pleo
        access = self._tenants.resolve(company)  # typed refusals, before any request
        with self._lock:
            client = self._clients.get(company)
            if client is None or client.key != access.client_key:
                if client is not None:
                    self._retire(client)
                client = self._clients[company] = _Client(access.client_key, self._connect(access))
            return client.pleo

    def _retire(self, client: _Client) -> None:
        for name in (f.name for f in fields(PleoStats)):
            setattr(
                self._retired, name, getattr(self._retired, name) + getattr(client.pleo.stats, name)
            )
        close = getattr(client.pleo, "close", None)
        if callable(close):
            close()
