"""Serve a `PleoSimulator` to httpx in memory: the real client code, no sockets.

A hang becomes the `ReadTimeout` the client would see, a drop the `RemoteProtocolError`.
"""

from __future__ import annotations

import httpx

from tooling.pleo_sim.app import PleoSimulator, SimRequest


def in_memory_transport(simulator: PleoSimulator) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        headers = {name.lower(): value for name, value in request.headers.items()}
        response = simulator.handle(SimRequest(request.method, target, headers, request.read()))
        if response.action == "hang":
            raise httpx.ReadTimeout("simulated hang", request=request)
        if response.action == "drop":
            raise httpx.RemoteProtocolError("simulated dropped connection", request=request)
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    return httpx.MockTransport(handle)
