"""template.yaml: least privilege, encryption, privacy. Read from the template itself."""

from __future__ import annotations

from typing import Any

import pytest

from tooling.build.template import Template

# Statements allowed a wildcard resource, each because AWS offers nothing narrower.
WILDCARD_RESOURCE_ALLOWED = {
    "DeliverLogs": "CloudWatch Logs delivery actions support no resource-level permissions",
}

TEMPLATE = Template.load()


def inline_statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for logical_id in TEMPLATE.of_type(kind):
            for policy in TEMPLATE.properties(logical_id).get("Policies", []):
                for statement in policy.get("Statement", []):
                    found.append((logical_id, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("owner", "statement"), inline_statements())
def test_no_allow_statement_has_a_wildcard_action(owner: str, statement: dict[str, Any]) -> None:
    assert statement["Effect"] == "Allow"
    for action in as_list(statement["Action"]):
        assert "*" not in action, f"{owner}/{statement.get('Sid')}: {action}"


@pytest.mark.parametrize(("owner", "statement"), inline_statements())
def test_wildcard_resources_only_where_aws_requires_them(
    owner: str, statement: dict[str, Any]
) -> None:
    if "*" in as_list(statement["Resource"]):
        assert statement.get("Sid") in WILDCARD_RESOURCE_ALLOWED, f"{owner}: {statement}"


def test_every_statement_is_named() -> None:
    assert all(statement.get("Sid") for _, statement in inline_statements())


def test_the_function_may_only_write_under_export_jobs() -> None:
    statements = {s["Sid"]: s for owner, s in inline_statements() if owner == "ScopeJobFunction"}
    assert statements["PagesAndScope"]["Resource"] == {
        "Fn::Sub": "${ScopeBucket.Arn}/export-jobs/*"
    }
    assert statements["PublishScope"]["Action"] == "sqs:SendMessage"
    assert statements["ReadPleoCredential"]["Resource"] == {"Ref": "PleoApiSecretArn"}


def test_the_bucket_is_encrypted_private_and_tls_only() -> None:
    bucket = TEMPLATE.properties("ScopeBucket")
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = TEMPLATE.properties("ScopeBucketPolicy")["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny"
    assert policy["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queues_are_encrypted_and_tls_only() -> None:
    for logical_id in TEMPLATE.of_type("AWS::SQS::Queue"):
        assert TEMPLATE.properties(logical_id)["SqsManagedSseEnabled"] is True, logical_id
    covered: list[str] = []
    for logical_id in TEMPLATE.of_type("AWS::SQS::QueuePolicy"):
        policy = TEMPLATE.properties(logical_id)
        covered += [queue["Ref"] for queue in policy["Queues"]]
        (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert len(as_list(deny["Resource"])) == len(policy["Queues"])
    assert sorted(covered) == sorted(TEMPLATE.of_type("AWS::SQS::Queue"))  # each queue once


def test_only_the_trigger_rule_may_send_to_the_admission_queue() -> None:
    statements = TEMPLATE.properties("AdmissionQueuePolicy")["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExportJobClaimedRule", "Arn"]}}
    }
    function = {s["Sid"]: s for owner, s in inline_statements() if owner == "ScopeJobFunction"}
    assert function["SetTriggersAside"]["Resource"] == {
        "Fn::GetAtt": ["AdmissionDeadLetterQueue", "Arn"]
    }


# Tables whose records never expire: a tenant stays until an operator removes it.
NO_TTL = {"TenantTable"}


def test_tables_are_encrypted_with_point_in_time_recovery_and_ttl() -> None:
    for logical_id in TEMPLATE.of_type("AWS::DynamoDB::Table"):
        table = TEMPLATE.properties(logical_id)
        assert table["SSESpecification"]["SSEEnabled"] is True
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        if logical_id in NO_TTL:
            assert "TimeToLiveSpecification" not in table, logical_id
        else:
            assert table["TimeToLiveSpecification"]["Enabled"] is True
        assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_tenant_registry_is_encrypted_with_its_own_rotating_key() -> None:
    table = TEMPLATE.properties("TenantTable")
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::GetAtt": ["TenantKey", "Arn"]},
    }
    assert TEMPLATE.resource("TenantTable")["DeletionPolicy"] == "Retain"
    key = TEMPLATE.properties("TenantKey")
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    dynamodb = statements["DynamoDBEncryptsTheRegistry"]
    # Anyone's use of the key through DynamoDB is bound to this account and to DynamoDB.
    assert dynamodb["Condition"]["StringEquals"] == {
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        "kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
    }
    assert "kms:Decrypt" in dynamodb["Action"]
    assert set(statements) == {"AccountAdministers", "DynamoDBEncryptsTheRegistry"}


def function_statements() -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for owner, s in inline_statements() if owner == "ScopeJobFunction"}


def test_the_function_reads_tenant_secrets_only_under_the_prefix() -> None:
    statements = function_statements()
    tenants = statements["ReadTenantCredentials"]
    assert tenants["Action"] == "secretsmanager:GetSecretValue"
    assert tenants["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
        ":secret:${TenantSecretPrefix}*"
    }
    # The prefix ends in "/": `prefix*` matches no sibling name.
    pattern = TEMPLATE.document["Parameters"]["TenantSecretPrefix"]["AllowedPattern"]
    assert pattern.endswith("/$")
    assert statements["ReadOAuthClient"]["Resource"] == {
        "Fn::If": [
            "HasOAuthClient",
            {"Ref": "PleoOAuthClientSecretArn"},
            {"Ref": "PleoApiSecretArn"},
        ]
    }
    readers = [
        s for s in statements.values() if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    assert len(readers) == 3


def test_the_function_reads_the_registry_and_never_scans_or_deletes_it() -> None:
    registry = function_statements()["ReadTenantRegistry"]
    assert registry["Resource"] == {"Fn::GetAtt": ["TenantTable", "Arn"]}
    assert set(registry["Action"]) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    tables = [
        s
        for s in function_statements().values()
        if {"Fn::GetAtt": ["TenantTable", "Arn"]} in as_list(s["Resource"])
    ]
    assert tables == [registry]


def test_the_function_s_kms_calls_are_bound_to_a_company_and_a_token_field() -> None:
    kms = function_statements()["SealAndOpenTenantTokens"]
    assert set(kms["Action"]) == {"kms:Encrypt", "kms:Decrypt"}
    assert kms["Resource"] == {"Fn::GetAtt": ["TenantKey", "Arn"]}
    condition = kms["Condition"]
    assert condition["ForAllValues:StringEquals"] == {
        "kms:EncryptionContextKeys": ["companyId", "field"]
    }
    # ForAllValues holds for a call with no context at all: Null "false" refuses that one.
    assert condition["Null"] == {"kms:EncryptionContextKeys": "false"}
    assert condition["StringEquals"] == {
        "kms:EncryptionContext:field": ["refreshToken", "accessToken"]
    }


def test_the_credential_is_a_reference_never_a_value() -> None:
    parameter = TEMPLATE.document["Parameters"]["PleoApiSecretArn"]
    assert "Default" not in parameter
    env = TEMPLATE.environment("ScopeJobFunction")
    assert env["PLEO_API_SECRET_ARN"] == {"Ref": "PleoApiSecretArn"}
    # Names of keys and token endpoints (an ARN, a URL) are fine; a key or token is not.
    suspicious = [name for name in env if "KEY" in name or "TOKEN" in name]
    assert all(name.endswith(("_ARN", "_URL")) for name in suspicious), suspicious


def test_a_trigger_that_keeps_failing_is_kept_not_lost() -> None:
    config = TEMPLATE.properties("ScopeJobFunction")["EventInvokeConfig"]
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["TriggerFailureQueue", "Arn"]},
    }
    (target,) = TEMPLATE.properties("ExportJobClaimedRule")["Targets"]
    assert target["DeadLetterConfig"] == {  # delivery failures too
        "Arn": {"Fn::GetAtt": ["TriggerDeliveryDeadLetterQueue", "Arn"]}
    }
