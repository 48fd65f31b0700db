"""`pleo-scope-ops tenant ...` against the local stack's registry (moto's DynamoDB and KMS over
HTTP, the tables and key created from template.yaml): add, show, list, disable, enable,
set-credential; a refresh token only from standard input, sealed, never printed."""

from __future__ import annotations

import json
import uuid
from typing import Any

from click.testing import CliRunner, Result

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.tenants import StoredToken
from tooling.ops.cli import main
from tooling.testkit.harness import Stack
from tooling.testkit.ops_cli import NO_NAMES, ops

PREFIX = "pleo-export-scope/tenants/"
CANARY = "rt-CANARY-7f3a9c-refresh"


def tenant_cli(stack: Stack, *args: str, stdin: str | None = None) -> Result:
    return ops(stack, "tenant", *args, stdin=stdin)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def own_secret(stack: Stack, company: str, document: dict[str, str]) -> str:
    reply = stack.aws.client("secretsmanager").create_secret(
        Name=f"{PREFIX}{company}", SecretString=json.dumps(document)
    )
    arn: str = reply["ARN"]
    return arn


def raw_record(stack: Stack, company: str) -> dict[str, Any]:
    item: dict[str, Any] = stack.aws.client("dynamodb").get_item(
        TableName=stack.aws.physical["TenantTable"],
        Key={"companyId": {"S": company}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_an_api_key_tenant_is_added_shown_and_listed(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"apiKey": "k"})
    added = as_json(
        tenant_cli(
            stack, "add", company.upper(), "--api-key-secret", arn,
            "--max-requests-per-minute", "120", "--json",
        )
    )  # fmt: skip
    assert added == {
        "companyId": company,  # lower case, as everywhere
        "status": "active",
        "credential": {"kind": "apiKey", "secretArn": arn},
        "maxRequestsPerMinute": 120,
        "version": 0,
    }
    assert as_json(tenant_cli(stack, "show", company, "--json")) == added
    listed = as_json(tenant_cli(stack, "list", "--json"))
    assert added in listed
    table = tenant_cli(stack, "list")
    assert table.exit_code == 0
    (line,) = [row for row in table.stdout.splitlines() if row.startswith(company)]
    assert line.split()[:4] == [company, "active", "apiKey", arn]


def test_a_secret_not_named_for_the_company_is_refused(stack: Stack) -> None:
    company, other = str(uuid.uuid4()), str(uuid.uuid4())
    arn = own_secret(stack, other, {"apiKey": "k"})
    refused = tenant_cli(stack, "add", company, "--api-key-secret", arn)
    assert refused.exit_code == 1
    assert "InvalidTenantRecord" in refused.output
    assert f"tenant secrets are named {PREFIX}{company}" in refused.output
    gone = tenant_cli(stack, "show", company)
    assert gone.exit_code == 1
    assert f"UnknownTenant: company {company} is not in the tenant registry" in gone.output


def test_a_company_is_added_once(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"accessToken": "t"})
    assert tenant_cli(stack, "add", company, "--access-token-secret", arn).exit_code == 0
    again = tenant_cli(stack, "add", company, "--access-token-secret", arn)
    assert again.exit_code == 1
    assert "already in the tenant registry" in again.output


def test_exactly_one_credential_is_given(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"apiKey": "k"})
    both = tenant_cli(stack, "add", company, "--api-key-secret", arn, "--oauth", stdin=CANARY)
    assert both.exit_code == 2
    assert "exactly one of" in both.output
    # No option takes a token: a token given as an argument is a usage error, not stored.
    in_argv = tenant_cli(stack, "add", company, "--oauth", CANARY)
    assert in_argv.exit_code == 2
    assert tenant_cli(stack, "show", company).exit_code == 1


def test_disable_and_enable(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"apiKey": "k"})
    tenant_cli(stack, "add", company, "--api-key-secret", arn)
    disabled = tenant_cli(stack, "disable", company)
    assert disabled.exit_code == 0
    assert "disabled (its triggers fail with TenantDisabled" in disabled.stdout
    assert as_json(tenant_cli(stack, "enable", company, "--json"))["status"] == "active"
    assert as_json(tenant_cli(stack, "show", company, "--json"))["status"] == "active"


def test_an_oauth_grant_is_read_from_stdin_sealed_and_never_printed(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"apiKey": "k"})
    tenant_cli(stack, "add", company, "--api-key-secret", arn)
    stack.aws.client("dynamodb").update_item(  # Pleo refused the old grant
        TableName=stack.aws.physical["TenantTable"],
        Key={"companyId": {"S": company}},
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": "relink_needed"}},
    )
    refused = tenant_cli(stack, "enable", company)
    assert refused.exit_code == 1
    assert "set-credential COMPANY --oauth" in refused.output
    listed = tenant_cli(stack, "list")
    assert "need a new OAuth grant" in listed.stdout

    stored = tenant_cli(stack, "set-credential", company, "--oauth", stdin=CANARY + "\n")
    assert stored.exit_code == 0, stored.output
    assert CANARY not in stored.output
    shown = as_json(tenant_cli(stack, "show", company, "--json"))
    assert shown["status"] == "active"
    assert shown["credential"] == {"kind": "oauth", "accessToken": "absent", "expiresAt": None}
    assert shown["version"] == 1
    every_output = tenant_cli(stack, "list", "--json").stdout + json.dumps(shown)
    assert CANARY not in every_output

    # Stored sealed (KMS ciphertext bound to the company and field), not as text.
    token = raw_record(stack, company)["credential"]["M"]["refreshToken"]
    assert set(token) == {"B"}
    assert CANARY.encode() not in bytes(token["B"])
    cipher = KmsTokenCipher(stack.aws.client("kms"), stack.aws.physical["TenantKey.Arn"])
    assert cipher.open(company, "refreshToken", StoredToken(sealed=bytes(token["B"]))) == CANARY


def test_an_empty_or_multi_line_refresh_token_is_refused(stack: Stack) -> None:
    company = str(uuid.uuid4())
    arn = own_secret(stack, company, {"apiKey": "k"})
    tenant_cli(stack, "add", company, "--api-key-secret", arn)
    empty = tenant_cli(stack, "set-credential", company, "--oauth", stdin="")
    assert empty.exit_code == 1
    assert "no refresh token on standard input" in empty.output
    two = tenant_cli(stack, "set-credential", company, "--oauth", stdin=f"{CANARY}\nsecond\n")
    assert two.exit_code == 1
    assert "outside printable ASCII" in two.output
    assert CANARY not in two.output
    assert as_json(tenant_cli(stack, "show", company, "--json"))["credential"]["kind"] == "apiKey"


def test_the_registry_must_be_named(stack: Stack) -> None:
    result = CliRunner().invoke(
        main, ["--endpoint-url", stack.aws.endpoint, "tenant", "list"], env=NO_NAMES
    )
    assert result.exit_code == 2
    assert "no tenant table: give --stack, --tenant-table or TENANT_TABLE_NAME" in result.output
