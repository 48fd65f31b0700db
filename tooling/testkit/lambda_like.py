"""A Lambda-like Python for the built artifact: the function's build output as /var/task, the
layer's as /opt, the runtime's boto3 (and its dependencies), the standard library, nothing
else. Read-only copies, and no bytecode written (Lambda can write neither into /var/task nor
into /opt): what the layer does not ship compiled is compiled again at every cold start.

The interpreter runs isolated (`-I -S -B`: no site-packages, no PYTHON* variables, no user
site, no script directory, no bytecode written); `tooling/testkit/lambda_bootstrap.py` sets its path
the way the Lambda runtime does, then imports or invokes the handler.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooling.build.artifact import Built

BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap.py"
# What the python3.12 runtime provides besides the standard library.
RUNTIME_SDK = "boto3"
HANDLER = "app.lambda_handler"  # template.yaml: ScopeJobFunction's Handler


def runtime_distributions(root: str = RUNTIME_SDK) -> list[str]:
    """`root` and everything it requires (extras left out), as installed here."""
    seen: list[str] = []
    pending = [root]
    while pending:
        name = pending.pop()
        if name.lower() in (s.lower() for s in seen):
            continue
        seen.append(name)
        for requirement in importlib.metadata.requires(name) or []:
            if "extra ==" not in requirement:
                match = re.match(r"[A-Za-z0-9_.-]+", requirement)
                assert match, requirement
                pending.append(match.group(0))
    return seen


def _copy_distribution(name: str, target: Path) -> None:
    distribution = importlib.metadata.distribution(name)
    tops = {Path(str(f)).parts[0] for f in distribution.files or []}
    for top in sorted(tops - {"..", "bin", "__pycache__"}):
        source = Path(str(distribution.locate_file(top)))
        if source.is_dir():
            # Modification times kept: the runtime's own pycs stay valid, as in Lambda's image.
            shutil.copytree(source, target / top, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, target / top)


def _read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@dataclass(frozen=True)
class LambdaLike:
    task: Path
    opt: Path
    runtime: Path

    @property
    def path(self) -> list[Path]:
        """The handler's import path, in the runtime's order (the standard library goes
        between the layer and the runtime's packages)."""
        return [self.task, self.opt / "python", self.runtime]

    def command(self, *args: str) -> list[str]:
        paths = [f"--path={p}" for p in self.path]
        return [sys.executable, "-I", "-S", "-B", str(BOOTSTRAP), *paths, *args]

    def invoke(
        self, event: dict[str, Any], variables: dict[str, str], scratch: Path
    ) -> dict[str, Any]:
        """Invoke the built handler once with `event`, in a fresh interpreter with `variables`
        as its environment. Returns the bootstrap's report: `result`, `origins` (where the
        main modules came from), `foreign` (modules from anywhere else)."""
        event_file = scratch / "event.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        done = subprocess.run(
            self.command("invoke", HANDLER, str(event_file), "--timeout", "60"),
            env=self.environment(variables),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the built handler failed:\n{done.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return report

    @staticmethod
    def environment(variables: dict[str, str]) -> dict[str, str]:
        """The process environment: the function's variables and no Python configuration
        (`-I` ignores PYTHON* anyway; PYTHONDONTWRITEBYTECODE says the same as `-B`)."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
        return {**keep, **variables, "PYTHONDONTWRITEBYTECODE": "1"}


@contextmanager
def lambda_like(built: Built) -> Iterator[LambdaLike]:
    """Read-only copies of the built function, the built layer and the runtime's boto3."""
    with tempfile.TemporaryDirectory(prefix="lambda-like-") as scratch:
        root = Path(scratch)
        tree = LambdaLike(root / "var" / "task", root / "opt", root / "var" / "runtime")
        shutil.copytree(built.function_dir, tree.task)
        shutil.copytree(built.layer_dir, tree.opt)
        tree.runtime.mkdir(parents=True)
        for name in runtime_distributions():
            _copy_distribution(name, tree.runtime)
        _read_only(root)
        try:
            yield tree
        finally:
            _writable(root)
