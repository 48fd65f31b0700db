"""The storm's Pleo simulator in a process of its own (its 100 ms answers, its per-credential
meter and its HTTP server do not share a GIL with the function's containers or the driver).
The child builds the same companies as the driver (the shape is seeded) and, when asked,
hands back its meter's report."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

from benchmarks.storm_shape import StormShape, build_companies
from tooling.pleo_sim import PleoSimulator
from tooling.pleo_sim.rate_meter import CredentialReport, RateLimit
from tooling.pleo_sim.server import serve

_REPORT, _STOP = "report", "stop"


@dataclass
class StormSimulator:
    url: str
    pid: int
    _connection: Connection

    def report(self) -> list[CredentialReport]:
        """The meter's report per credential, as the simulator counted it."""
        self._connection.send(_REPORT)
        reports: list[CredentialReport] = self._connection.recv()
        return reports


@contextmanager
def storm_simulator(shape: StormShape) -> Iterator[StormSimulator]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, shape), name="pleo-sim", daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the simulator's process did not start within 60 s")
        yield StormSimulator(parent.recv(), process.pid or 0, parent)
    finally:
        if process.is_alive():
            parent.send(_STOP)
            process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)


def _serve(connection: Connection, shape: StormShape) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    simulator = PleoSimulator(rate_limit_per_credential=RateLimit(shape.limit_per_minute, 60.0))
    build_companies(shape, simulator)
    with serve(simulator) as url:
        connection.send(url)
        while (message := connection.recv()) != _STOP:
            if message == _REPORT:
                connection.send(simulator.meter.report())
