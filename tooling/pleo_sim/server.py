"""Serve a `PleoSimulator` over real HTTP/1.1 on loopback (keep-alive, like Pleo's edge).

Besides the API it answers a small admin API, so a simulator started from the command line
can be seeded and broken from another process:
  POST /_sim/jobs                 {"id", "status"?, "generatedItems"?, "items"?, "pageSizes"?}
  POST /_sim/jobs/{id}/faults     [{"kind": ..., "onRequests": [...], ...}, ...]
  GET  /_sim/jobs/{id}/requests   {"count": n}
  POST /_sim/rate-limit           {"requests": n, "perSeconds"?: 60} (`requests` null: none)
  POST /_sim/rate-limit/credential  the same, enforced for each credential on its own
  GET  /_sim/rate-meter           per credential: requests, throttled, most in any 10 s / 60 s
  POST /_sim/companies            {"id", "apiKeys"?: [...], "accessTokens"?: [...]}
  POST /_sim/companies/{id}/grants {"accessLifetime"?, "refreshLifetime"?} -> the new tokens
  POST /_sim/oauth/faults         [{"kind": "lose_answer" | "status" | "latency", "times"?, ...}]
  GET  /_sim/oauth/requests       {"count": n} (calls to the token endpoint)
and Pleo's OAuth token endpoint, `POST /oauth/token` (oauth.py).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tooling.pleo_sim.app import PleoSimulator, RateLimit, SimRequest, SimResponse
from tooling.pleo_sim.companies import DEFAULT_COMPANY_ID, READ_SCOPE
from tooling.pleo_sim.faults import Fault
from tooling.pleo_sim.jobs import SimJob
from tooling.pleo_sim.oauth import TokenFault


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: PleoSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _Server

    def do_GET(self) -> None:
        if self.path.startswith("/_sim/"):
            self._admin()
            return
        self._api(b"")

    def do_POST(self) -> None:
        if self.path.startswith("/_sim/"):
            self._admin()
            return
        length = int(self.headers.get("Content-Length") or 0)
        self._api(self.rfile.read(length) if length else b"")

    def _api(self, body: bytes) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = SimRequest(self.command, self.path, headers, body)
        response = self.server.simulator.handle(request)
        if response.delay:
            time.sleep(response.delay)
        if response.action != "respond":
            self._abort()
            return
        self._send(response)

    def _admin(self) -> None:
        simulator = self.server.simulator
        parts = [p for p in self.path.split("/") if p]
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else None
        if self.command == "POST" and parts == ["_sim", "jobs"]:
            job = SimJob(
                id=body["id"],
                status=body.get("status", "in_progress"),
                generated_items=int(body.get("generatedItems", 0)),
                items=list(body.get("items", [])),
                page_sizes=body.get("pageSizes"),
                company_id=body.get("companyId", DEFAULT_COMPANY_ID),
            )
            simulator.add_job(job)
            self._send(SimResponse.json(201, {"data": job.as_resource()}))
        elif self.command == "POST" and len(parts) == 4 and parts[3] == "faults":
            simulator.inject(parts[2], *(Fault.from_json(f) for f in body))
            self._send(SimResponse.json(201, {"faults": len(body)}))
        elif self.command == "POST" and parts == ["_sim", "rate-limit"]:
            limit = None
            if body.get("requests") is not None:
                limit = RateLimit(int(body["requests"]), float(body.get("perSeconds", 60.0)))
            simulator.set_rate_limit(limit)
            self._send(SimResponse.json(200, {"rateLimit": body}))
        elif self.command == "POST" and parts == ["_sim", "rate-limit", "credential"]:
            limit = None
            if body.get("requests") is not None:
                limit = RateLimit(int(body["requests"]), float(body.get("perSeconds", 60.0)))
            simulator.meter.set_limit(limit)
            self._send(SimResponse.json(200, {"rateLimitPerCredential": body}))
        elif self.command == "GET" and parts == ["_sim", "rate-meter"]:
            reports = [dataclasses.asdict(r) for r in simulator.meter.report()]
            self._send(SimResponse.json(200, {"credentials": reports}))
        elif self.command == "POST" and parts == ["_sim", "companies"]:
            scopes = {READ_SCOPE}
            simulator.add_company(
                body["id"],
                api_keys={key: set(scopes) for key in body.get("apiKeys", [])},
                access_tokens={token: set(scopes) for token in body.get("accessTokens", [])},
            )
            self._send(SimResponse.json(201, {"id": body["id"]}))
        elif (
            self.command == "POST"
            and parts[:2] == ["_sim", "companies"]
            and parts[3:] == ["grants"]
        ):
            options = {
                name: float(body[key])
                for key, name in (
                    ("accessLifetime", "access_lifetime"),
                    ("refreshLifetime", "refresh_lifetime"),
                )
                if body and key in body
            }
            issued = simulator.grant(parts[2], **options)
            document = {
                "accessToken": issued.access_token,
                "refreshToken": issued.refresh_token,
                "expiresIn": issued.expires_in,
            }
            self._send(SimResponse.json(201, document))
        elif self.command == "POST" and parts == ["_sim", "oauth", "faults"]:
            simulator.inject_token_fault(
                *(
                    TokenFault(
                        kind=f["kind"],
                        times=f.get("times", 1),
                        status=int(f.get("status", 503)),
                        seconds=float(f.get("seconds", 0.0)),
                    )
                    for f in body
                )
            )
            self._send(SimResponse.json(201, {"faults": len(body)}))
        elif self.command == "GET" and parts == ["_sim", "oauth", "requests"]:
            self._send(SimResponse.json(200, {"count": simulator.token_requests}))
        elif self.command == "GET" and len(parts) == 4 and parts[3] == "requests":
            self._send(SimResponse.json(200, {"count": simulator.request_count(parts[2])}))
        else:
            self._send(SimResponse.error(404, f"no admin route {self.command} {self.path}"))

    def _send(self, response: SimResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _abort(self) -> None:
        """Close the connection with no answer (a dropped connection, or the end of a hang)."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(simulator: PleoSimulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the simulator in a background thread; yields its base URL."""
    server = _Server((host, port), _Handler)
    server.simulator = simulator
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="pleo-sim", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
