"""The ports and the service are the domain's side: importing them loads no HTTP stack (Pleo
sits behind a port), so the service runs on in-memory fakes and a Pleo of another kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LAYER = Path(__file__).parents[2] / "layers" / "scope_core"
HTTP_STACK = ("httpx", "httpcore", "tenacity")


@pytest.mark.parametrize(
    "module", ["pleo_scope.ports", "pleo_scope.service", "pleo_scope.contract", "pleo_scope.walk"]
)
def test_importing_the_domain_loads_no_http_stack(module: str) -> None:
    probe = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([m for m in {list(HTTP_STACK)!r} if m in sys.modules]))"
    )
    reply = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(LAYER)},
    )
    assert json.loads(reply.stdout) == []


def test_the_probe_sees_the_http_stack_where_it_is_loaded() -> None:
    probe = "import sys; import pleo_scope.pleo_client; print('httpx' in sys.modules)"
    reply = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(LAYER)},
    )
    assert reply.stdout.strip() == "True"
