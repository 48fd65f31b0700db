"""No test module imports another test module: what tests share lives in the test kit
(tooling/testkit/), in tests/support.py and tests/fakes.py, or in a conftest.py as fixtures
(which pytest hands to the tests, never imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tooling import ROOT

TESTS = ROOT / "tests"
SHARED = {"tests.support", "tests.fakes"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imported(source: str, importer: str) -> set[str]:
    """The modules `source` (the module `importer`) imports, relative imports resolved; for
    `from PACKAGE import NAME`, PACKAGE.NAME (NAME may be a module)."""
    found: set[str] = set()
    package = importer.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def foreign_test_imports(source: str, importer: str) -> set[str]:
    """What `source` imports of tests/ beyond the shared support (the `tests` package itself,
    named on the way to a shared module, is no import of another test module)."""
    of_tests = {name for name in imported(source, importer) if name.split(".")[0] == "tests"}
    return {
        name
        for name in of_tests - SHARED
        if name != "tests" and not any(name.startswith(f"{shared}.") for shared in SHARED)
    }


def modules() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_test_module_imports_another(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert foreign_test_imports(source, module_name(path)) == set()


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from tests.e2e.conftest import X", {"tests.e2e.conftest", "tests.e2e.conftest.X"}),
        ("import tests.unit.test_pacing", {"tests.unit.test_pacing"}),
        ("from tests.unit import test_pacing", {"tests.unit", "tests.unit.test_pacing"}),
        ("from .test_pacing import JOB", {"tests.unit.test_pacing", "tests.unit.test_pacing.JOB"}),
        ("from ..e2e import conftest", {"tests.e2e", "tests.e2e.conftest"}),
        ("from tests import conftest", {"tests.conftest"}),
        ("from tests.support import FakeClock\nfrom tests import fakes", set()),
        ("import tests.fakes\nfrom tooling.testkit.harness import Stack", set()),
    ],
)  # fmt: skip
def test_the_check_finds_every_form_of_import(source: str, found: set[str]) -> None:
    assert foreign_test_imports(source, "tests.unit.test_example") == found


def test_every_test_folder_is_read() -> None:
    read = {path.relative_to(TESTS).parts[0] for path in modules() if path.parent != TESTS}
    assert read == {"unit", "integration", "e2e", "robustness"}
