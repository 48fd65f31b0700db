"""`make demo` keeps what it published: the scope and its manifest copied out of moto (which
stops with the demo) to a folder a user reads afterwards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tooling.testkit.demo import keep_scope
from tooling.testkit.harness import Stack


def test_the_demo_keeps_the_scope_and_its_manifest(stack: Stack, tmp_path: Path) -> None:
    job = stack.new_job(items=45)
    result = stack.invoke({"jobId": job.id})
    assert result["done"] is True

    kept = keep_scope(stack.aws, result["scope"], tmp_path / job.id)

    assert kept.scope == tmp_path / job.id / "scope.jsonl"
    assert kept.scope.read_bytes() == stack.expected_scope(job)
    manifest = json.loads(kept.manifest.read_bytes())
    assert manifest["jobId"] == job.id
    assert manifest["sha256"] == hashlib.sha256(kept.scope.read_bytes()).hexdigest()
