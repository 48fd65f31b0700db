"""The built layer's checks (tooling.build.artifact) catch what they are for: an extension built for
the wrong machine, a runtime SDK in the layer, a module without its unchecked-hash pyc."""

from __future__ import annotations

import py_compile
from pathlib import Path

from tooling.build.artifact import Built, check_layer, elf_machine


def elf(machine: int) -> bytes:
    """The first 20 bytes of a little-endian ELF64 header for `machine`, then padding."""
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def layer(tmp_path: Path, architecture: str) -> Built:
    python = tmp_path / "CoreLayer" / "python"
    (python / "pkg").mkdir(parents=True)
    source = python / "pkg" / "__init__.py"
    source.write_text("VALUE = 1\n")
    py_compile.compile(str(source), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return Built(tmp_path, architecture)


def test_a_clean_layer_has_no_problem(tmp_path: Path) -> None:
    built = layer(tmp_path, "arm64")
    (built.layer_python / "pkg" / "_speed.cpython-312-aarch64-linux-gnu.so").write_bytes(elf(183))
    report = check_layer(built)
    assert report.problems == []
    assert list(report.extensions.values()) == [183]
    assert report.modules == 1
    assert report.zipped_bytes > 0


def test_an_extension_for_another_machine_is_a_problem(tmp_path: Path) -> None:
    built = layer(tmp_path, "arm64")
    (built.layer_python / "pkg" / "_speed.so").write_bytes(elf(62))
    assert check_layer(built).problems == ["python/pkg/_speed.so: built for x86_64, not arm64"]


def test_runtime_sdks_and_missing_or_timestamp_pycs_are_problems(tmp_path: Path) -> None:
    built = layer(tmp_path, "x86_64")
    (built.layer_python / "botocore").mkdir()
    plain = built.layer_python / "pkg" / "plain.py"
    plain.write_text("X = 2\n")
    stamped = built.layer_python / "pkg" / "stamped.py"
    stamped.write_text("Y = 3\n")
    py_compile.compile(str(stamped), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    assert sorted(check_layer(built).problems) == [
        "botocore is in the layer",
        "python/pkg/plain.py: no pyc",
        "python/pkg/stamped.py: not an unchecked-hash pyc",
    ]


def test_elf_machine_reads_the_header_and_ignores_other_files(tmp_path: Path) -> None:
    so, text = tmp_path / "a.so", tmp_path / "b.txt"
    so.write_bytes(elf(183))
    text.write_text("not an ELF")
    assert elf_machine(so) == 183
    assert elf_machine(text) is None
