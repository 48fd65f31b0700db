"""Importing the handler makes no AWS client and opens no socket; each client is made on its
first use, once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from pleo_scope.aws.clients import LazyClient

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "PLEO_API_BASE_URL": "https://pleo.invalid",
    "PLEO_API_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pleo",
    "SCOPE_TABLE_NAME": "scope",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "SCOPE_BUCKET_NAME": "bucket",
    "SCOPE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/scope.fifo",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:scope",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
}

# Runs in a fresh interpreter: counts botocore clients and refuses every connection.
PROBE = """
import json, socket, sys
import botocore.client

made = []
original = botocore.client.ClientCreator.create_client
def create_client(self, service_name, *args, **kwargs):
    made.append(service_name)
    return original(self, service_name, *args, **kwargs)
botocore.client.ClientCreator.create_client = create_client

def refuse(self, *args, **kwargs):
    raise AssertionError(f"network at import: {args}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

import app
at_import = list(made)
assembled_at_import = app.app.assembled
app.app.dynamodb.meta  # the first use of DynamoDB makes that client, and only it
print(json.dumps({
    "at_import": at_import, "assembled_at_import": assembled_at_import, "after_first_use": made
}))
"""


def test_importing_the_handler_makes_no_client_and_opens_no_socket() -> None:
    path = [ROOT / "layers" / "scope_core", ROOT / "functions" / "scope_job"]
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROBE],
        env={**ENV, "PYTHONPATH": ":".join(map(str, path))},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {
        "at_import": [],
        "assembled_at_import": False,
        "after_first_use": ["dynamodb"],
    }


def test_a_lazy_client_is_made_once_on_first_use_even_under_threads() -> None:
    made: list[object] = []

    class Client:
        def call(self) -> str:
            return "answer"

    def make() -> Client:
        made.append(object())
        return Client()

    lazy = LazyClient(make)
    assert not lazy.made
    assert made == []
    threads = [threading.Thread(target=lazy.call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lazy.call() == "answer"
    assert lazy.made
    assert len(made) == 1
