"""The state machine ends a walk on exactly the errors errors.py calls final.

Step Functions matches an error by its exact class name, not by its base class: the ASL's
no-retry list must name every final class (each family's base and every subclass of it, at
any depth, in any module of the core). A new final error that the ASL does not name would be
retried for hours; a name the ASL keeps after its class is gone or no longer final would end
walks that could have gone on. Both directions are checked against the classes as they are
when the test runs, so it holds whatever final errors are added later.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pleo_scope
from pleo_scope import errors
from pleo_scope.errors import FINAL_ERRORS, ScopeError, WalkSuperseded

ASL = Path(__file__).parents[2] / "statemachine" / "scope_job.asl.json"
NOT_RETRIED_NOT_FAILED = {WalkSuperseded.__name__}
"""Not retried either, but not a failure: caught into the Succeed state `Superseded`."""


def scope_job_task() -> dict[str, Any]:
    # The ${...} substitutions are numbers or quoted ARNs: any number keeps it JSON.
    text = re.sub(r"\$\{\w+\}", "1", ASL.read_text(encoding="utf-8"))
    task: dict[str, Any] = json.loads(text)["States"]["ScopeJob"]
    return task


def never_retried(task: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for rule in task["Retry"]:
        if rule.get("MaxAttempts") == 0:
            names.update(rule["ErrorEquals"])
    return names


def final_classes() -> set[type[ScopeError]]:
    """The final families and every subclass of them, wherever in the core it is defined."""
    for module in pkgutil.walk_packages(pleo_scope.__path__, "pleo_scope."):
        importlib.import_module(module.name)  # a subclass exists once its module is loaded
    found: set[type[ScopeError]] = set()
    pending = list(FINAL_ERRORS)
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return found


def test_the_asl_never_retries_exactly_the_final_errors() -> None:
    expected = {cls.__name__ for cls in final_classes()}
    assert never_retried(scope_job_task()) - NOT_RETRIED_NOT_FAILED == expected


def test_what_the_asl_ends_on_without_failing_is_not_final() -> None:
    declared = {name for name, _ in inspect.getmembers(errors, inspect.isclass)}
    assert declared >= NOT_RETRIED_NOT_FAILED
    assert not NOT_RETRIED_NOT_FAILED & {cls.__name__ for cls in final_classes()}
    task = scope_job_task()
    assert never_retried(task) >= NOT_RETRIED_NOT_FAILED
    catches = {name for rule in task["Catch"] for name in rule["ErrorEquals"]}
    assert catches >= NOT_RETRIED_NOT_FAILED
