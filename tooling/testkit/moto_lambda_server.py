"""moto's server in a process of its own whose Lambda runs the function elsewhere: every
Invoke (the state machine's tasks, the admission poller's, the CLI's) is forwarded over HTTP
to a Lambda runtime at $LOCAL_LAMBDA_RUNTIME_URL (benchmarks/lambda_pool.py: one process per
warm container), so the real ASL runs here and the function's invocations run there.

    LOCAL_LAMBDA_RUNTIME_URL=http://127.0.0.1:PORT MOTO_PORT=P \\
        python -m tooling.testkit.moto_lambda_server -H 127.0.0.1 -p P

The runtime answers POST /invoke with the handler's result; the header X-Function-Error says
it raised (the body is then Lambda's error payload). Also the local stack's moto fixes:
moto_speed, continue-as-new's parameter case, `account` in events put on an SQS target.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import httpx
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import main

from tooling.testkit import moto_speed
from tooling.testkit.local_function import events_name_their_account
from tooling.testkit.local_stack import _let_moto_continue_as_new

RUNTIME_VARIABLE = "LOCAL_LAMBDA_RUNTIME_URL"
TIMEOUT_HEADER = "X-Lambda-Timeout"
ERROR_HEADER = "X-Function-Error"
# Beyond the function's own time-out: the runtime answers within it.
GRACE_SECONDS = 60.0


def forward_lambda(runtime_url: str) -> None:
    """moto's Invoke sends the event to the runtime and answers with what it answered."""
    client = httpx.Client(base_url=runtime_url)

    def call(body: bytes, timeout: float, response_headers: Any) -> bytes:
        reply = client.post(
            "/invoke",
            content=body,
            headers={TIMEOUT_HEADER: str(timeout)},
            timeout=timeout + GRACE_SECONDS,
        )
        reply.raise_for_status()
        if ERROR_HEADER in reply.headers:
            response_headers["x-amz-function-error"] = reply.headers[ERROR_HEADER]
        return reply.content

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        function = self.get_function(function_name, qualifier)  # a 404 as in AWS
        timeout = float(function.timeout)
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        if (headers.get("X-Amz-Invocation-Type") or "RequestResponse") == "Event":
            # Accepted at once, run in the background, as Lambda's asynchronous invocation.
            threading.Thread(
                target=call, args=(payload, timeout, {}), name="lambda-event", daemon=True
            ).start()
            return b""
        return call(payload, timeout, response_headers)

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


if __name__ == "__main__":
    moto_speed.apply()
    _let_moto_continue_as_new()
    forward_lambda(os.environ[RUNTIME_VARIABLE])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request costs
    with events_name_their_account():
        main()
