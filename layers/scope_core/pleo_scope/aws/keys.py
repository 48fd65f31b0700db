"""Key design of the scope table (one table, `pk` + `sk`, TTL on `expiresAt`).

Partition keys spread per item and per cursor, so that a 1,000,000-item job does not write
into one hot partition (DynamoDB allows ~1,000 writes/s per partition key):
- walk checkpoint:  pk=JOB#{jobId}                          sk=WALK
- cursor followed:  pk=JOB#{jobId}#RUN#{runId}#CURSOR#{sha} sk=CURSOR
- publish ledger:   pk=JOB#{jobId}#ITEM#{accountingEntryId} sk=LEDGER
"""

from __future__ import annotations

import hashlib

WALK_SK = "WALK"
CURSOR_SK = "CURSOR"
LEDGER_SK = "LEDGER"


def walk_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def cursor_pk(job_id: str, run_id: int, cursor: str) -> str:
    digest = hashlib.sha256(cursor.encode()).hexdigest()
    return f"JOB#{job_id}#RUN#{run_id}#CURSOR#{digest}"


def ledger_pk(job_id: str, accounting_entry_id: str) -> str:
    return f"JOB#{job_id}#ITEM#{accounting_entry_id}"
