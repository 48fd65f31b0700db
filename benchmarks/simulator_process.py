"""Run the Pleo simulator in a child process, so that its CPU does not share the GIL with
the code being measured."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def simulator_process(*jobs: str) -> Iterator[str]:
    """`jobs` as the CLI takes them (`ID:ITEMS`); yields the base URL."""
    port = free_port()
    args = [sys.executable, "-m", "tooling.pleo_sim", "--port", str(port)]
    for job in jobs:
        args += ["--job", job]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base_url}/_sim/jobs/none/requests", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
