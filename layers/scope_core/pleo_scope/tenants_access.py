"""Which credential and rate budget a job's requests to Pleo use (DESIGN.md, "Tenants").

A trigger without `companyId` is the default tenant's: the deployment's own secret
(PLEO_API_SECRET_ARN), exactly as in contract v2. A trigger naming a company is resolved in
the tenant registry on every invocation (so that `disable` stops the next one): a company not
in it is `UnknownTenant`, a disabled one `TenantDisabled`, one whose grant Pleo refused
`RelinkNeeded`. Its secret (`apiKey`, `accessToken`) must be named by the convention IAM
enforces (docs/security.md, "Tenants"): `{TENANT_SECRET_PREFIX}{companyId}`, so a record
naming another company's secret, or one outside the prefix, is refused before anything is
read, with an `InvalidTenantRecord` naming the company and the ARN (never a value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pleo_scope.contract import JobRef
from pleo_scope.credentials import Credential, CredentialSource
from pleo_scope.errors import InvalidTenantRecord, TenantMismatch, UnknownTenant
from pleo_scope.ports import WalkState
from pleo_scope.tenants import (
    AccessTokenCredential,
    ApiKeyCredential,
    Tenant,
    TenantCredential,
    TenantRegistry,
)

DEFAULT_SECRET_PREFIX = "pleo-export-scope/tenants/"  # noqa: S105 - a name prefix, not a secret
# After `{prefix}{companyId}`: nothing (a name, not an ARN), AWS's random suffix, or a path.
_OWN_SECRET_TAIL = re.compile(r"(-[A-Za-z0-9]{6})?|/.+")


@dataclass(frozen=True, slots=True)
class TenantAccess:
    """What the requests for one company go out with: its registry record (None for the
    default tenant) and its own rate limit, if the record sets one."""

    company_id: str | None
    tenant: Tenant | None = None

    @property
    def credential(self) -> TenantCredential | None:
        return None if self.tenant is None else self.tenant.credential

    @property
    def max_requests_per_minute(self) -> int | None:
        return None if self.tenant is None else self.tenant.max_requests_per_minute

    @property
    def client_key(self) -> tuple[object, ...]:
        """What a Pleo client built for this access depends on: a record whose credential or
        limit changed needs a new client; one whose status or tokens changed does not (the
        OAuth Auth reads its tokens from the registry itself)."""
        credential = self.credential
        if credential is None:
            return (self.company_id,)
        where = getattr(credential, "secret_arn", None)
        return (self.company_id, credential.kind, where, self.max_requests_per_minute)


class TenantResolver:
    """A company's registry record, checked, on every call (no cache: the registry is the
    one place an operator stops a tenant). `registry` None: a deployment without one, where
    only the default tenant exists."""

    def __init__(
        self, registry: TenantRegistry | None, secret_prefix: str = DEFAULT_SECRET_PREFIX
    ) -> None:
        self._registry = registry
        self._prefix = secret_prefix
        self.reads = 0
        """Registry reads made (one per resolution of a company)."""

    def resolve(self, company_id: str | None) -> TenantAccess:
        if company_id is None:
            return TenantAccess(None)
        if self._registry is None:
            raise UnknownTenant(
                f"company {company_id}: this deployment has no tenant registry"
                " (TENANT_TABLE_NAME is not set), only its default tenant"
            )
        self.reads += 1
        tenant = self._registry.get(company_id)  # UnknownTenant when there is no record
        tenant.require_active()  # TenantDisabled, RelinkNeeded
        credential = tenant.credential
        if isinstance(credential, ApiKeyCredential | AccessTokenCredential):
            require_own_secret(credential.secret_arn, company_id, self._prefix)
        return TenantAccess(company_id, tenant)


def secret_name_of(secret_arn: str) -> str | None:
    """The name inside a Secrets Manager ARN (`arn:...:secret:{name}-{6 random}`), with
    AWS's random suffix; None when it is not such an ARN."""
    parts = secret_arn.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "secretsmanager":
        return None
    if parts[5] != "secret" or not parts[6]:
        return None
    return parts[6]


def require_own_secret(secret_arn: str, company_id: str, prefix: str) -> None:
    """The convention of docs/security.md: `{prefix}{companyId}`, then AWS's `-XXXXXX`
    suffix or a `/` and more (`.../{companyId}/pleo`). Anything else is a record that could
    make one company's trigger read another's credential: refused, and named."""
    name = secret_name_of(secret_arn)
    own = f"{prefix}{company_id}"
    if name is None or not name.startswith(own) or not _OWN_SECRET_TAIL.fullmatch(name[len(own) :]):
        raise InvalidTenantRecord(
            f"company {company_id}: credential.secretArn {secret_arn[:200]} is not this"
            f" company's secret: tenant secrets are named {own} (TENANT_SECRET_PREFIX"
            " followed by the company id, docs/security.md)"
        )


class KindCheckedSource:
    """A tenant's secret, held to the kind its registry record declares: a record saying
    `apiKey` whose secret holds an `accessToken` (or the reverse) is an `InvalidTenantRecord`,
    not a credential sent the wrong way."""

    def __init__(self, source: CredentialSource, company_id: str, credential: TenantCredential):
        self._source = source
        self._company_id = company_id
        self._declared = credential

    def get(self, *, force_fetch: bool = False) -> Credential:
        credential = self._source.get(force_fetch=force_fetch)
        if credential.kind != self._declared.kind:
            where = getattr(self._declared, "secret_arn", "")
            raise InvalidTenantRecord(
                f"company {self._company_id}: its record's credential is {self._declared.kind!r}"
                f" but secret {where} holds {credential.kind!r}"
            )
        return credential


def require_walked_as(record: WalkState | None, job: JobRef) -> None:
    """One job is never walked with two companies' credentials: a trigger naming another
    company than the one the job's walk record keeps is refused, before any request to Pleo
    goes out with the trigger's credential (and nothing is written to that walk)."""
    if record is None or record.company_id == job.company_id:
        return
    raise TenantMismatch(
        f"{job} was walked for {_company(record.company_id)}; this trigger names"
        f" {_company(job.company_id)}: a job is only ever walked with one company's credential"
        " (check the trigger's companyId)"
    )


def _company(company_id: str | None) -> str:
    return "the default tenant (no companyId)" if company_id is None else f"company {company_id}"
