"""The sample events of events/ (the docs' and `sam local invoke`'s), aimed at any job: each
names one job id, the one the local stack seeds."""

from __future__ import annotations

import json
from typing import Any

from tooling import ROOT

EVENTS = ROOT / "events"
SAMPLE_EVENT = EVENTS / "eventbridge-export-job-claimed.json"


def sample_job_id() -> str:
    job_id: str = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))["detail"]["jobId"]
    return job_id


def load_event(name: str, job_id: str) -> dict[str, Any]:
    """The sample event `name` of events/, aimed at `job_id`."""
    text = (EVENTS / name).read_text(encoding="utf-8").replace(sample_job_id(), job_id)
    event: dict[str, Any] = json.loads(text)
    return event
