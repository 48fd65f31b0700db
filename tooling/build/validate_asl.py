"""Validate every state machine of template.yaml with statelint, after substituting its
DefinitionSubstitutions (literal values as they are, intrinsic functions by a stand-in ARN)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tooling.build.template import TEMPLATE, Template

STAND_IN_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:stand-in"


def substituted_definition(properties: dict[str, object]) -> str:
    definition = (TEMPLATE.parent / str(properties["DefinitionUri"])).read_text(encoding="utf-8")
    substitutions = properties.get("DefinitionSubstitutions", {})
    assert isinstance(substitutions, dict)
    for name, value in substitutions.items():
        literal = value if isinstance(value, str | int | float) else STAND_IN_ARN
        definition = definition.replace(f"${{{name}}}", str(literal))
    json.loads(definition)  # every placeholder replaced, still JSON
    return definition


def main() -> int:
    template = Template.load()
    failures = 0
    for logical_id in template.of_type("AWS::Serverless::StateMachine"):
        definition = substituted_definition(template.properties(logical_id))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            file.write(definition)
        result = subprocess.run(
            [str(Path(sys.executable).parent / "statelint"), file.name],
            capture_output=True,
            text=True,
            check=False,
        )
        Path(file.name).unlink()
        verdict = "ok" if result.returncode == 0 else result.stdout.strip()
        print(f"statelint {logical_id}: {verdict}")
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
