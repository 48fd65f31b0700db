"""Lambda's containers for a benchmark, as processes: each container imports the handler once
(its init), then runs one invocation at a time, and is reused warm, as Lambda does; a new one
starts when every container is busy. An HTTP runtime in front of them is what moto's Lambda
forwards Invoke to (tooling/testkit/moto_lambda_server.py), so the state machine's tasks and
the admission poller's invocations reach the same containers.

Each container makes its AWS calls wait `aws_latency` first and reports, with each result,
the jobs whose walk finished in it (when), its AWS calls and its rate-budget store's calls.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from tooling.testkit.lambda_bootstrap import Context
from tooling.testkit.moto_lambda_server import ERROR_HEADER, TIMEOUT_HEADER

_READY = "ready"


@dataclass(frozen=True)
class Reply:
    """One invocation, as its container reports it."""

    event: dict[str, Any]
    result: Any
    error: str | None
    started: float
    seconds: float
    done: list[tuple[str, float]]
    """Jobs whose walk finished in this invocation, with time.monotonic() (system-wide on
    Linux, so comparable with the driver's clock)."""
    aws_calls: int
    aws_seconds: float
    """Wall time in the AWS calls (moto's answers and the injected latency)."""
    cpu_seconds: float
    """The container's CPU during the invocation (the rest is waiting: Pleo, AWS, the CPU)."""
    container: int
    serial: int
    """The container's how-many-th invocation (1: its first, after its init)."""
    store_calls: int
    """The container's rate-budget store calls so far (cumulative)."""
    operations: dict[str, int] = field(default_factory=dict)
    """This invocation's AWS calls by "service.Operation" (the log's breakdown)."""
    operation_seconds: dict[str, float] = field(default_factory=dict)
    """Their wall time, by operation name."""


@dataclass
class _Container:
    number: int
    process: BaseProcess
    connection: Connection


@dataclass
class ContainerPool:
    aws_latency: float
    on_reply: Callable[[Reply], None] = lambda reply: None
    running: int = 0
    peak: int = 0
    started: int = 0
    store_calls: dict[int, int] = field(default_factory=dict)
    _idle: list[_Container] = field(default_factory=list)
    _all: list[_Container] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def warm(self, containers: int) -> None:
        """Start `containers` before the measurement (their init is Lambda's, on its CPU)."""
        with ThreadPoolExecutor(max_workers=max(1, containers)) as starting:
            for container in starting.map(lambda _: self._start(), range(containers)):
                with self._lock:
                    self._idle.append(container)

    def invoke(self, event: dict[str, Any], timeout: float) -> Reply:
        with self._lock:
            container = self._idle.pop() if self._idle else None
            self.running += 1
            self.peak = max(self.peak, self.running)
        started = time.monotonic()
        reply: Reply | None = None
        try:
            if container is None:
                container = self._start()  # a cold start: every container is busy
            container.connection.send((event, timeout))
            reply = container.connection.recv()
        except (EOFError, OSError):
            # The container's process went away mid-invocation (the storm's teardown, a
            # crash): Lambda answers the caller with a runtime error, so does the pool.
            reply = _exited(event, started, container)
        finally:
            with self._lock:
                self.running -= 1
                if container is not None and reply is not None and reply.serial:
                    self._idle.append(container)
                    self.store_calls[container.number] = reply.store_calls
        self.on_reply(reply)
        return reply

    def pids(self) -> dict[int, str]:
        with self._lock:
            return {c.process.pid or 0: "containers" for c in self._all}

    def close(self) -> None:
        for container in self._all:
            if container.process.is_alive():
                try:
                    container.connection.send(None)
                except OSError:  # its connection died with an invocation (see invoke)
                    container.process.terminate()
        for container in self._all:
            container.process.join(timeout=10)
            if container.process.is_alive():
                container.process.terminate()

    def _start(self) -> _Container:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        with self._lock:
            self.started += 1
            number = self.started
        process = context.Process(
            target=_container,
            args=(child, self.aws_latency, number),
            name=f"lambda-{number}",
            daemon=True,
        )
        process.start()
        if parent.recv() != _READY:
            raise RuntimeError(f"container {number} did not start")
        container = _Container(number, process, parent)
        with self._lock:
            self._all.append(container)
        return container


EXITED = "Runtime.ExitError"


def _exited(event: dict[str, Any], started: float, container: _Container | None) -> Reply:
    """What Lambda reports when the runtime exits during an invocation (serial 0: the
    container is not reused)."""
    return Reply(
        event=event,
        result={"errorType": EXITED, "errorMessage": "the container exited"},
        error=EXITED,
        started=started,
        seconds=time.monotonic() - started,
        done=[],
        aws_calls=0,
        aws_seconds=0.0,
        cpu_seconds=0.0,
        container=container.number if container is not None else 0,
        serial=0,
        store_calls=0,
    )


def _container(connection: Connection, aws_latency: float, number: int) -> None:
    """A container: the handler's init once, then one invocation per message."""
    from benchmarks.aws_calls import AwsCalls

    logging.getLogger("botocore").setLevel(logging.WARNING)
    app: Any = importlib.import_module("app")
    calls = AwsCalls(aws_latency)
    calls.install(existing=True)
    in_aws, by_operation = _time_aws_calls()
    done: list[tuple[str, float]] = []
    step = app.scope_step

    def scope_step(service: Any, request: Any, *args: Any) -> dict[str, Any]:
        result: dict[str, Any] = step(service, request, *args)
        if result.get("done"):
            done.append((request.job_id, time.monotonic()))
        return result

    app.scope_step = scope_step
    connection.send(_READY)
    serial = 0
    while (message := connection.recv()) is not None:
        event, timeout = message
        done.clear()
        before = Counter(calls.calls)
        serial += 1
        in_aws[0] = 0.0
        by_operation.clear()
        cpu = time.process_time()
        started = time.monotonic()
        result: Any = None
        error: str | None = None
        try:
            result = app.lambda_handler(event, Context(timeout, "ScopeJobFunction"))
        except Exception as failure:  # what the runtime reports for an unhandled error
            error = type(failure).__name__
            result = {"errorType": error, "errorMessage": str(failure)}
        limiter = app.app.parts().rate_limiter
        connection.send(
            Reply(
                event=event,
                result=result,
                error=error,
                started=started,
                seconds=time.monotonic() - started,
                done=list(done),
                aws_calls=sum((calls.calls - before).values()),
                aws_seconds=in_aws[0],
                cpu_seconds=time.process_time() - cpu,
                container=number,
                serial=serial,
                store_calls=limiter.store.calls.calls if limiter is not None else 0,
                operations=dict(calls.calls - before),
                operation_seconds=dict(by_operation),
            )
        )


def _time_aws_calls() -> tuple[list[float], dict[str, float]]:
    """Adds each AWS call's wall time (one process, so one counter) to the list's one item,
    and to its operation's total."""
    import botocore.client

    total = [0.0]
    by_operation: dict[str, float] = {}
    call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def timed(client: Any, operation: str, parameters: Any) -> Any:
        started = time.monotonic()
        try:
            return call(client, operation, parameters)
        finally:
            took = time.monotonic() - started
            total[0] += took
            by_operation[operation] = by_operation.get(operation, 0.0) + took

    botocore.client.BaseClient._make_api_call = timed  # type: ignore[attr-defined]
    return total, by_operation


@contextmanager
def lambda_runtime(pool: ContainerPool) -> Iterator[str]:
    """The runtime moto's Lambda forwards to; yields its URL."""

    class Runtime(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
            reply = pool.invoke(event, float(self.headers.get(TIMEOUT_HEADER) or 900))
            body = json.dumps(reply.result).encode()
            self.send_response(200)
            if reply.error is not None:
                self.send_header(ERROR_HEADER, "Unhandled")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="lambda-runtime", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
