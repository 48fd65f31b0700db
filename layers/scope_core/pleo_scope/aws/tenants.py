"""The tenant registry in DynamoDB (TENANT_TABLE_NAME): one record per company, in the format
of DESIGN.md "Registry record", plus attributes of this project's own beside it (`version`,
`refreshLeaseOwner`, `refreshLeaseExpiresAt`, `accessTokenLifetime`). A record holding only
the design's fields reads as version 0 with no lease.

Every write the refresh protocol makes is conditional: the lease on there being no live lease,
the tokens on the version, relink_needed on the version too (a newer grant stored meanwhile
wins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pleo_scope.errors import InvalidTenantRecord, UnknownTenant
from pleo_scope.tenants import (
    TENANT_STATUSES,
    AccessTokenCredential,
    ApiKeyCredential,
    FreshTokens,
    OAuthCredential,
    StoredToken,
    Tenant,
    TenantCredential,
    TenantStatus,
    normalise_company_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, UpdateItemOutputTypeDef

_LEASE_ATTRIBUTES = "refreshLeaseOwner, refreshLeaseExpiresAt"


class DynamoTenantRegistry:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self.calls = 0
        """DynamoDB calls made (the refresh benchmark reads it)."""

    # -- reads ------------------------------------------------------------------------------

    def get(self, company_id: str) -> Tenant:
        self.calls += 1
        reply = self._client.get_item(
            TableName=self._table, Key=_key(company_id), ConsistentRead=True
        )
        item = reply.get("Item")
        if item is None:
            raise UnknownTenant(f"company {company_id} is not in the tenant registry")
        return tenant_from_item(item)

    def scan(self) -> Iterator[Tenant]:
        """Every tenant (the operator CLI's list; never on a walk's path)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield tenant_from_item(item)

    # -- the refresh protocol ---------------------------------------------------------------

    def take_refresh_lease(
        self, company_id: str, owner: str, now: float, until: float
    ) -> Tenant | None:
        self.calls += 1
        reply = self._update(
            company_id,
            UpdateExpression="SET refreshLeaseOwner = :owner, refreshLeaseExpiresAt = :until",
            ConditionExpression=(
                "attribute_exists(companyId) AND (attribute_not_exists(refreshLeaseOwner)"
                " OR refreshLeaseExpiresAt < :now)"
            ),
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":until": {"N": _number(until)},
                ":now": {"N": _number(now)},
            },
            ReturnValues="ALL_NEW",
        )
        return None if reply is None else tenant_from_item(reply["Attributes"])

    def release_refresh_lease(self, company_id: str, owner: str) -> None:
        self.calls += 1
        self._update(  # a failed condition: it ran out and someone else holds it, fine
            company_id,
            UpdateExpression=f"REMOVE {_LEASE_ATTRIBUTES}",
            ConditionExpression="refreshLeaseOwner = :owner",
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    def store_tokens(self, company_id: str, version: int, tokens: FreshTokens) -> Tenant | None:
        self.calls += 1
        values: dict[str, AttributeValueTypeDef] = {
            ":refresh": {"B": tokens.refresh_token},
            ":access": {"B": tokens.access_token},
            ":expires": {"N": _number(tokens.expires_at)},
            ":lifetime": {"N": str(tokens.lifetime)},
            ":next": {"N": str(version + 1)},
            ":oauth": {"S": "oauth"},
        }
        reply = self._update(
            company_id,
            UpdateExpression=(
                "SET credential.refreshToken = :refresh, credential.accessToken = :access,"
                " credential.expiresAt = :expires, accessTokenLifetime = :lifetime,"
                f" version = :next REMOVE {_LEASE_ATTRIBUTES}"
            ),
            ConditionExpression="credential.kind = :oauth AND " + _on_version(version, values),
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return None if reply is None else tenant_from_item(reply["Attributes"])

    def mark_relink_needed(self, company_id: str, version: int) -> bool:
        self.calls += 1
        values: dict[str, AttributeValueTypeDef] = {":relink": {"S": "relink_needed"}}
        reply = self._update(
            company_id,
            UpdateExpression=f"SET #status = :relink REMOVE {_LEASE_ATTRIBUTES}",
            ConditionExpression="attribute_exists(companyId) AND " + _on_version(version, values),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )
        return reply is not None

    # -- what onboarding and the operator CLI write -----------------------------------------

    def put(self, tenant: Tenant) -> None:
        """Write a new company's record (tokens as given: seal them first); a company already
        in the registry is refused. A new credential for one is `set_credential`, which moves
        the version on (a whole-record overwrite would reset it and let a refresh of the old
        grant still in flight overwrite the new one)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item_from_tenant(tenant),
                ConditionExpression="attribute_not_exists(companyId)",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise InvalidTenantRecord(
                    f"company {tenant.company_id} is already in the tenant registry"
                ) from None
            raise

    def set_status(self, company_id: str, status: TenantStatus) -> None:
        self._update_existing(
            company_id,
            UpdateExpression="SET #status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": status}},
        )

    def set_credential(self, company_id: str, credential: TenantCredential) -> None:
        """A new credential (a new grant, say): the version moves on, so any refresh of the
        old grant still in flight cannot overwrite it, and the tenant is active again."""
        item = item_from_tenant(Tenant(company_id, "active", credential))
        self._update_existing(
            company_id,
            UpdateExpression=(
                "SET credential = :credential, #status = :active,"
                " version = if_not_exists(version, :zero) + :one"
                f" REMOVE accessTokenLifetime, {_LEASE_ATTRIBUTES}"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":credential": item["credential"],
                ":active": {"S": "active"},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            },
        )

    # -- conditional writes -----------------------------------------------------------------

    def _update(self, company_id: str, **request: Any) -> UpdateItemOutputTypeDef | None:
        """One conditional UpdateItem of the company's record: its reply, or None when its
        condition failed (in the protocol: someone else got there first)."""
        try:
            return self._client.update_item(TableName=self._table, Key=_key(company_id), **request)
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise

    def _update_existing(self, company_id: str, **request: Any) -> None:
        """An operator's UpdateItem, of a company that must be in the registry."""
        reply = self._update(
            company_id, ConditionExpression="attribute_exists(companyId)", **request
        )
        if reply is None:
            raise UnknownTenant(f"company {company_id} is not in the tenant registry")


# -- the record format ------------------------------------------------------------------------


def tenant_from_item(item: dict[str, Any]) -> Tenant:
    company_id = normalise_company_id(_string(item, "companyId", "?"))
    status = _string(item, "status", company_id)
    if status not in TENANT_STATUSES:
        raise InvalidTenantRecord(
            f"company {company_id}: status {status[:32]!r} is not one of"
            f" {', '.join(TENANT_STATUSES)}"
        )
    credential = item.get("credential", {}).get("M")
    if credential is None:
        raise InvalidTenantRecord(f"company {company_id}: `credential` must be a map")
    limit = _optional_number(item, "maxRequestsPerMinute", company_id)
    if limit is not None and (limit < 1 or limit != int(limit)):
        raise InvalidTenantRecord(
            f"company {company_id}: maxRequestsPerMinute must be a positive integer"
        )
    lease = _optional_number(item, "refreshLeaseExpiresAt", company_id)
    lifetime = _optional_number(item, "accessTokenLifetime", company_id)
    return Tenant(
        company_id=company_id,
        status=status,
        credential=_credential(credential, company_id),
        max_requests_per_minute=int(limit) if limit is not None else None,
        version=int(_optional_number(item, "version", company_id) or 0),
        refresh_lease_expires_at=lease if "refreshLeaseOwner" in item else None,
        access_token_lifetime=int(lifetime) if lifetime is not None else None,
    )


def item_from_tenant(tenant: Tenant) -> dict[str, AttributeValueTypeDef]:
    credential: dict[str, AttributeValueTypeDef] = {"kind": {"S": tenant.credential.kind}}
    if isinstance(tenant.credential, ApiKeyCredential | AccessTokenCredential):
        credential["secretArn"] = {"S": tenant.credential.secret_arn}
    else:
        credential["refreshToken"] = _token_value(tenant.credential.refresh_token)
        if tenant.credential.access_token is not None:
            credential["accessToken"] = _token_value(tenant.credential.access_token)
        if tenant.credential.expires_at is not None:
            credential["expiresAt"] = {"N": _number(tenant.credential.expires_at)}
    item: dict[str, AttributeValueTypeDef] = {
        "companyId": {"S": tenant.company_id},
        "status": {"S": tenant.status},
        "credential": {"M": credential},
    }
    if tenant.max_requests_per_minute is not None:
        item["maxRequestsPerMinute"] = {"N": str(tenant.max_requests_per_minute)}
    return item


def _credential(document: dict[str, Any], company_id: str) -> TenantCredential:
    kind = _string(document, "kind", company_id, where="credential.")
    if kind in ("apiKey", "accessToken"):
        secret_arn = _string(document, "secretArn", company_id, where="credential.")
        if kind == "apiKey":
            return ApiKeyCredential(secret_arn)
        return AccessTokenCredential(secret_arn)
    if kind != "oauth":
        raise InvalidTenantRecord(
            f"company {company_id}: credential.kind {kind[:32]!r} is not apiKey, accessToken"
            " or oauth"
        )
    refresh = _stored_token(document.get("refreshToken"), "refreshToken", company_id)
    if refresh is None:
        raise InvalidTenantRecord(f"company {company_id}: credential.refreshToken is missing")
    access = _stored_token(document.get("accessToken"), "accessToken", company_id)
    expires_at = _optional_number(document, "expiresAt", company_id, where="credential.")
    return OAuthCredential(
        refresh_token=refresh,
        access_token=access,
        expires_at=expires_at,
    )


def _stored_token(value: dict[str, Any] | None, name: str, company_id: str) -> StoredToken | None:
    if value is None or "NULL" in value:
        return None
    if "B" in value:
        return StoredToken(sealed=bytes(value["B"]))
    if "S" in value and value["S"].strip():
        return StoredToken(plain=value["S"].strip())
    raise InvalidTenantRecord(
        f"company {company_id}: credential.{name} must be a non-empty string or binary"
    )


def _token_value(token: StoredToken) -> AttributeValueTypeDef:
    if token.sealed is not None:
        return {"B": token.sealed}
    assert token.plain is not None
    return {"S": token.plain}


def _string(item: dict[str, Any], name: str, company_id: str, *, where: str = "") -> str:
    value = item.get(name, {})
    if "S" not in value or not value["S"].strip():
        raise InvalidTenantRecord(f"company {company_id}: {where}{name} must be a string")
    text: str = value["S"].strip()
    return text


def _optional_number(
    item: dict[str, Any], name: str, company_id: str, *, where: str = ""
) -> float | None:
    value = item.get(name)
    if value is None or "NULL" in value:
        return None
    if "N" not in value:
        raise InvalidTenantRecord(f"company {company_id}: {where}{name} must be a number")
    return float(value["N"])


def _on_version(version: int, values: dict[str, AttributeValueTypeDef]) -> str:
    """The condition that the record is still at `version` (0: one that never had tokens
    stored), its value added to `values`."""
    if version == 0:
        return "attribute_not_exists(version)"
    values[":version"] = {"N": str(version)}
    return "version = :version"


def _key(company_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"companyId": {"S": company_id}}


def _number(seconds: float) -> str:
    return f"{seconds:.3f}"


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
