"""The tenant registry as the local stack creates it from template.yaml: the table with the
template's key schema, encrypted with the customer-managed TenantKey, and the function's
environment naming both."""

from __future__ import annotations

import json

from tooling.testkit.harness import Stack


def test_the_registry_is_created_encrypted_with_the_tenant_key(stack: Stack) -> None:
    table = stack.aws.physical["TenantTable"]
    description = stack.aws.client("dynamodb").describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "companyId", "KeyType": "HASH"}]
    sse = description["SSEDescription"]
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyArn"] == stack.aws.physical["TenantKey.Arn"]
    assert stack.aws.function_env["TENANT_TABLE_NAME"] == table
    assert stack.aws.function_env["TENANT_KEY_ARN"] == stack.aws.physical["TenantKey.Arn"]
    assert stack.aws.function_env["TENANT_SECRET_PREFIX"] == "pleo-export-scope/tenants/"


def test_the_tenant_key_carries_the_template_s_policy_and_rotates(stack: Stack) -> None:
    kms = stack.aws.client("kms")
    key_id = stack.aws.physical["TenantKey"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    sids = {statement["Sid"] for statement in policy["Statement"]}
    assert sids == {"AccountAdministers", "DynamoDBEncryptsTheRegistry"}
    via = policy["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == "dynamodb.eu-west-1.amazonaws.com"  # resolved, not a !Sub left over
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_the_local_oauth_app_is_the_simulator_s(stack: Stack) -> None:
    env = stack.aws.function_env
    assert env["PLEO_OAUTH_TOKEN_URL"] == f"{env['PLEO_API_BASE_URL']}/oauth/token"
    secret = stack.aws.client("secretsmanager").get_secret_value(
        SecretId=env["PLEO_OAUTH_CLIENT_SECRET_ARN"]
    )
    assert json.loads(secret["SecretString"]) == {
        "clientId": "sim-client-id",
        "clientSecret": "sim-client-secret",
    }
