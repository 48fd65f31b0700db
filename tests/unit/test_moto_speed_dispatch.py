"""The local stack's moto fix for request dispatch (tooling.testkit.moto_speed): each
request still reaches its service's backend, without listing moto's package on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import backends
from moto.server import ThreadedMotoServer

from tooling.testkit import moto_speed
from tooling.testkit.local_stack import free_port


@pytest.fixture
def endpoint() -> Iterator[str]:
    moto_speed.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def session() -> boto3.Session:
    return boto3.Session(
        region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_requests_reach_their_backends_without_listing_moto(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = session()
    sqs = aws.client("sqs", endpoint_url=endpoint)
    dynamodb = aws.client("dynamodb", endpoint_url=endpoint)
    sqs.create_queue(QueueName="dispatched")
    dynamodb.create_table(
        TableName="dispatched",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    listed: list[str] = []
    listdir = os.listdir

    def counted(path: Any = ".") -> list[str]:
        listed.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)  # the module moto.backends lists with
    for _ in range(3):
        assert any(u.endswith("/dispatched") for u in sqs.list_queues()["QueueUrls"])
        assert "dispatched" in dynamodb.list_tables()["TableNames"]  # moto: one state per process
    assert listed == []
    assert "dynamodb" in backends.list_of_moto_modules()
