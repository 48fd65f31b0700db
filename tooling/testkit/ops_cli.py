"""`pleo-scope-ops` run in-process on a test's local stack: every resource named by its option
(the endpoint, the scope table, bucket, state machine, function, the tenant registry and key)
and nothing read from the environment, so a test sees what the options alone do."""

from __future__ import annotations

import json
import re
from typing import Any

from click.testing import Result

from tooling.ops.cli import main
from tooling.ops.resources import ENV_OF
from tooling.testkit.cli_runner import CliRunner
from tooling.testkit.harness import Stack

NO_NAMES: dict[str, str | None] = dict.fromkeys([*ENV_OF.values(), "TENANT_SECRET_PREFIX"])
"""An environment in which no variable names a resource (click's `env` unsets a None)."""


def stack_names(stack: Stack) -> list[str]:
    physical = stack.aws.physical
    return [
        *("--endpoint-url", stack.aws.endpoint),
        *("--table", physical["ScopeTable"], "--bucket", physical["ScopeBucket"]),
        *("--state-machine-arn", physical["ScopeJobStateMachine"]),
        *("--function", physical["ScopeJobFunction"]),
        *("--tenant-table", physical["TenantTable"], "--tenant-key", physical["TenantKey.Arn"]),
    ]


def ops(stack: Stack, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, [*stack_names(stack), *args], env=NO_NAMES, input=stdin)


def ops_json(stack: Stack, *args: str, exit_code: int = 0) -> Any:
    result = ops(stack, *args, "--json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def table_rows(text: str) -> dict[str, str]:
    """A `status` table: label, two spaces or more, value."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines())
