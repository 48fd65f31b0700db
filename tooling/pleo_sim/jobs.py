"""Simulated export jobs. Items are virtual: item i of a generated job is computed from
(seed, i) on demand, so a 1,000,000-item job costs nothing until its pages are read."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from tooling.pleo_sim.companies import DEFAULT_COMPANY_ID

# Weighted status mix of generated items (out of 20).
_STATUS_MIX = (
    ["pending"] * 12 + ["in_progress"] * 2 + ["successful"] * 3 + ["failed"] * 2 + ["abandoned"]
)
_EPOCH = "2026-11-01T08:00:00Z"


@dataclass(frozen=True)
class JsonLiteral:
    """An item value the simulator writes as this text, as it is: JSON numbers that no
    Python float holds (`1e400`, `2.5e-400`), or the non-JSON `NaN` some servers send."""

    text: str


@dataclass
class SimJob:
    id: str
    status: str = "in_progress"
    generated_items: int = 0
    """How many virtual items come first; then `items` follow."""
    items: list[dict[str, Any]] = field(default_factory=list)
    """Explicit items, served after the generated ones (duplicates allowed)."""
    page_sizes: list[int] | None = None
    """Force page k to hold page_sizes[k] items whatever `limit` says (0 allowed)."""
    seed: str = ""
    company_id: str = DEFAULT_COMPANY_ID
    """Only this company's credentials read the job (others get 404)."""
    status_overrides: dict[str, str] = field(default_factory=dict)
    """accountingEntryId -> status, applied when an item is served (mid-walk changes)."""
    stable_cursors: bool = False
    """The same position always gets the same cursor (APIs that derive it from the
    position), so a walk that starts over meets its own cursors again."""
    last_end_cursor: bool = True
    """False: the last page's `endCursor` is null (allowed when `hasNextPage` is false)."""

    def __post_init__(self) -> None:
        self.seed = self.seed or self.id

    @property
    def item_count(self) -> int:
        return self.generated_items + len(self.items)

    def item_at(self, index: int) -> dict[str, Any]:
        if index < self.generated_items:
            item = generated_item(self.id, self.seed, index)
        else:
            item = dict(self.items[index - self.generated_items])
        override = self.status_overrides.get(item["accountingEntryId"])
        if override is not None:
            item["status"] = override
        return item

    def as_resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "companyId": self.company_id,
            "status": self.status,
            "numberOfItems": self.item_count,
            "createdAt": _EPOCH,
            "startedAt": _EPOCH if self.status != "pending" else None,
            "lastUpdatedAt": _EPOCH,
            "completedAt": None,
            "isInteractive": False,
            "failureReason": None,
            "failureReasonType": None,
        }


def generated_item(job_id: str, seed: str, index: int) -> dict[str, Any]:
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=16).digest()
    entry_id = str(uuid.UUID(bytes=digest, version=4))
    status = _STATUS_MIX[digest[0] % len(_STATUS_MIX)]
    return make_item(job_id, entry_id, status)


def make_item(job_id: str, entry_id: str, status: str, **extra: Any) -> dict[str, Any]:
    finished = status in ("successful", "failed", "abandoned")
    item: dict[str, Any] = {
        "accountingEntryId": entry_id,
        "exportJobId": job_id,
        "status": status,
        "exportedAt": _EPOCH if finished else None,
        "externalId": f"ERP-{entry_id[:8]}" if status == "successful" else None,
        "externalUrl": None,
        "failureReason": "Receipt upload failed" if status == "failed" else None,
        "failureReasonType": "receipt_upload_failure" if status == "failed" else None,
    }
    item.update(extra)
    return item
