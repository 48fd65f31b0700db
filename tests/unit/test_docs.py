"""The docs: a short README that links every docs/ file, links that resolve, and the one
writer of generated sections, which replaces what lies between a section's markers only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import bench_fleet, bench_large, bench_oauth_refresh
from tooling import ROOT
from tooling.ops import runbook
from tooling.reports import chaos, robustness
from tooling.reports.docs_writer import DOCS, DocSection

GENERATED = [
    ("python -m tooling.reports.robustness --full --write-docs", robustness.SECTION),
    ("python -m tooling.reports.chaos --write-docs", chaos.SECTION),
    ("python -m tooling.ops.runbook --write-docs", runbook.SECTION),
    ("python -m benchmarks.bench_large --write-docs", bench_large.SECTION),
    ("python -m benchmarks.bench_fleet --compare --write-docs", bench_fleet.SECTION),
    ("python -m benchmarks.bench_fleet --compare --write-docs", bench_fleet.README_SECTION),
    ("python -m benchmarks.bench_oauth_refresh --write-docs", bench_oauth_refresh.SECTION),
]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_short_and_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200
    linked = {Path(target).name for target in LINK.findall(readme)}
    assert {doc.name for doc in DOCS.glob("*.md")} <= linked
    for command in ("make demo", "make test"):
        assert command in readme


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=str)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" not in target:
            assert (page.parent / target).resolve().exists(), f"{page.name} links {target}"


@pytest.mark.parametrize(
    ("command", "section"), GENERATED, ids=[f"{c} -> {s.doc}" for c, s in GENERATED]
)
def test_every_generated_section_has_its_markers_once(command: str, section: DocSection) -> None:
    text = section.path.read_text(encoding="utf-8")
    start, end = section.markers
    assert text.count(start) == 1
    assert text.count(end) == 1
    assert text.index(start) < text.index(end)


def test_the_writer_replaces_the_section_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text(
        "# Page\n\nbefore\n<!-- t:start -->\nold\ntable\n<!-- t:end -->\nafter\n",
        encoding="utf-8",
    )
    DocSection("page.md", "t", docs=tmp_path).write("| new |\n")
    assert (tmp_path / "page.md").read_text(encoding="utf-8") == (
        "# Page\n\nbefore\n<!-- t:start -->\n| new |\n<!-- t:end -->\nafter\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        "<!-- t:start -->\nonly a start\n",
        "<!-- t:start -->\n<!-- t:end -->\n" * 2,
    ],
)
def test_the_writer_refuses_a_page_without_exactly_one_section(tmp_path: Path, text: str) -> None:
    (tmp_path / "page.md").write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit, match="exactly one"):
        DocSection("page.md", "t", docs=tmp_path).write("| new |")
    assert (tmp_path / "page.md").read_text(encoding="utf-8") == text
