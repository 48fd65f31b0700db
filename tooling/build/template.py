"""Read template.yaml (CloudFormation short-form tags included) so the local stack creates
its resources from the template's own declarations: no second copy of keys or flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tooling import ROOT

TEMPLATE = ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Template:
    document: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> Template:
        with path.open(encoding="utf-8") as stream:
            return cls(yaml.load(stream, Loader=_CloudFormationLoader))  # noqa: S506 - SafeLoader subclass

    def resource(self, logical_id: str) -> dict[str, Any]:
        resource: dict[str, Any] = self.document["Resources"][logical_id]
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(logical_id).get("Properties", {})
        return properties

    def of_type(self, resource_type: str) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.document["Resources"].items()
            if resource["Type"] == resource_type
        ]

    def environment(self, function: str) -> dict[str, Any]:
        variables: dict[str, Any] = self.properties(function)["Environment"]["Variables"]
        return variables
