from __future__ import annotations

from collections.abc import Iterator

import pytest

from tooling.pleo_sim import PleoSimulator
from tooling.pleo_sim.server import serve
from tooling.testkit.harness import Stack, open_stack

# The test kit's shared assertions, rewritten as a test module's are (values on failure).
pytest.register_assert_rewrite("tooling.testkit.assertions")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the heavier variants too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="heavy variant: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole product on the embedded defaults (simulator + moto), once per session."""
    with open_stack() as opened:
        yield opened


@pytest.fixture
def simulator() -> PleoSimulator:
    return PleoSimulator()


@pytest.fixture
def sim_url(simulator: PleoSimulator) -> Iterator[str]:
    """The simulator served over real HTTP on loopback."""
    with serve(simulator) as base_url:
        yield base_url
