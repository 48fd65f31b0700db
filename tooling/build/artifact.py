"""The built artifact: `sam build` for an architecture, and the checks on the layer it makes.

    python -m tooling.build.artifact [--architecture arm64] [--build-dir DIR]

builds the template (for the declared architecture unless told otherwise), then checks the
layer: every compiled extension is an ELF for that machine, neither boto3 nor botocore is in
it, and every module ships an unchecked-hash pyc for Python 3.12. It prints what it found and
the layer's zipped size, and exits non-zero on any problem (CI runs it).

The SAM CLI is `$SAM_CLI`, else the one `make sam` installs in `.sam-venv` (installed here on
first use, from `.ci/requirements-sam.txt`), so that `make test` works on a fresh machine.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tooling.build.template import TEMPLATE, Template

ROOT = TEMPLATE.parent
SAM_VENV = ROOT / ".sam-venv"
SAM_REQUIREMENTS = ROOT / ".ci" / "requirements-sam.txt"
FUNCTION = "ScopeJobFunction"
LAYER = "CoreLayer"
DECLARED = "arm64"
# ELF e_machine values (the header's 2 bytes at offset 18).
MACHINES = {"arm64": 183, "x86_64": 62}
MACHINE_NAMES = {183: "aarch64", 62: "x86_64"}
RUNTIME_SDKS = ("boto3", "botocore", "s3transfer")
# What the build reads: a change to any of it makes a new build.
INPUTS = (
    "template.yaml",
    "layers/scope_core",
    "functions/scope_job",
    ".ci/requirements-sam.txt",
)


def runtime_python() -> str:
    """A Python 3.12 (the runtime's version), as `tooling/build/find-python.sh` finds it."""
    script = ROOT / "tooling" / "build" / "find-python.sh"
    found = subprocess.run([str(script)], capture_output=True, text=True, check=True)
    return found.stdout.strip()


def sam_cli() -> Path:
    """`$SAM_CLI`, else the SAM CLI of `.sam-venv`, installed there (pinned) when missing."""
    if os.environ.get("SAM_CLI"):
        return Path(os.environ["SAM_CLI"])
    sam = SAM_VENV / "bin" / "sam"
    stamp = SAM_VENV / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < SAM_REQUIREMENTS.stat().st_mtime:
        print(f"installing the SAM CLI into {SAM_VENV} ({SAM_REQUIREMENTS.name})", file=sys.stderr)
        if not (SAM_VENV / "bin" / "python").exists():
            subprocess.run([runtime_python(), "-m", "venv", str(SAM_VENV)], check=True)
        pip = [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(SAM_REQUIREMENTS)], check=True)
        stamp.touch()
    return sam


def inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def template_for(architecture: str) -> dict[str, object]:
    """template.yaml with every architecture set to `architecture` (long-form intrinsics)."""
    document = Template.load().document
    document["Globals"]["Function"]["Architectures"] = [architecture]
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["CompatibleArchitectures"] = [architecture]
            resource.setdefault("Metadata", {})["BuildArchitecture"] = architecture
        elif resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"].pop("Architectures", None)
    return document


@dataclass(frozen=True)
class Built:
    root: Path
    architecture: str

    @property
    def function_dir(self) -> Path:
        """What Lambda unpacks into /var/task."""
        return self.root / FUNCTION

    @property
    def layer_dir(self) -> Path:
        """What Lambda unpacks into /opt (the layer's `python/` is on the path)."""
        return self.root / LAYER

    @property
    def layer_python(self) -> Path:
        return self.layer_dir / "python"


def build(architecture: str = DECLARED, build_dir: Path | None = None) -> Built:
    """`sam build` of the template for `architecture` (the declared one: the template as it
    is; another: a copy with the architecture changed, paths resolved from the repository)."""
    # The declared architecture builds where `sam local invoke` and `sam deploy` look.
    default = "build" if architecture == DECLARED else f"build-{architecture}"
    build_dir = build_dir or ROOT / ".aws-sam" / default
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    python = runtime_python()
    template = TEMPLATE
    if architecture != DECLARED:
        template = build_dir.parent / f"{build_dir.name}.template.json"
        template.write_text(json.dumps(template_for(architecture), indent=1), encoding="utf-8")
    env = {
        **os.environ,
        # SAM's python3.12 builder looks for python3.12 on PATH (pyenv's shims may refuse).
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": python,
        "LAYER_ARCHITECTURE": architecture,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    }
    sources = ["--template-file", str(template), "--base-dir", str(ROOT)]
    subprocess.run(
        [str(sam_cli()), "build", *sources, "--build-dir", str(build_dir)],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=sys.stderr,
    )
    return Built(build_dir, architecture)


def cached_build(architecture: str) -> Built:
    """A build of the current sources, reused while they do not change (tests, benchmarks)."""
    build_dir = ROOT / ".aws-sam" / f"cached-{architecture}-{inputs_digest()}"
    complete = build_dir / ".complete"
    if complete.exists():
        return Built(build_dir, architecture)
    built = build(architecture, build_dir)
    complete.touch()
    return built


# -- checks ------------------------------------------------------------------------------------


def elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine, or None when the file is not an ELF."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    byteorder: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def pyc_problem(pyc: Path) -> str | None:
    header = pyc.read_bytes()[:8]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return "not compiled for this Python (3.12)"
    if int.from_bytes(header[4:8], "little") != 0b01:  # hash-based, source not checked
        return "not an unchecked-hash pyc"
    return None


@dataclass
class LayerReport:
    extensions: dict[str, int]
    modules: int
    problems: list[str]
    zipped_bytes: int


def check_layer(built: Built) -> LayerReport:
    python = built.layer_python
    want = MACHINES[built.architecture]
    problems = [f"{sdk} is in the layer" for sdk in RUNTIME_SDKS if (python / sdk).exists()]
    extensions: dict[str, int] = {}
    modules = 0
    tag = sys.implementation.cache_tag
    for path in sorted(python.rglob("*")):
        if not path.is_file():
            continue
        relative = str(path.relative_to(built.layer_dir))
        machine = elf_machine(path)
        if machine is not None:
            extensions[relative] = machine
            if machine != want:
                name = MACHINE_NAMES.get(machine, str(machine))
                problems.append(f"{relative}: built for {name}, not {built.architecture}")
        elif path.suffix == ".py":
            modules += 1
            pyc = path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc"
            problem = "no pyc" if not pyc.exists() else pyc_problem(pyc)
            if problem:
                problems.append(f"{relative}: {problem}")
    return LayerReport(extensions, modules, problems, zipped_size(built.layer_dir))


def zipped_size(directory: Path) -> int:
    """The size of the directory as SAM uploads it: a deflate zip of its files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return len(buffer.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--architecture", choices=sorted(MACHINES), default=DECLARED)
    parser.add_argument("--build-dir", type=Path)
    args = parser.parse_args()
    built = build(args.architecture, args.build_dir)
    report = check_layer(built)
    print(f"sam build ({built.architecture}) in {built.root}")
    print(f"  {len(report.extensions)} compiled extensions (ELF)")
    for path, machine in report.extensions.items():
        print(f"  extension {path}: {MACHINE_NAMES.get(machine, machine)}")
    print(f"  {report.modules} modules, each with an unchecked-hash pyc for Python 3.12")
    print(f"  layer zipped: {report.zipped_bytes / 2**20:.1f} MiB")
    for problem in report.problems:
        print(f"  PROBLEM {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
