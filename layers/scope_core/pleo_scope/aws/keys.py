"""Key design of the scope table (one table, `pk` + `sk`, TTL on `expiresAt`).

- walk checkpoint:  pk=JOB#{jobId}                          sk=WALK
- cursor followed:  pk=JOB#{jobId}#RUN#{runId}#CURSOR#{sha} sk=CURSOR
- publish ledger:   pk=JOB#{jobId}#LEDGER                   sk=RUN#{run:06d}#UNIT#{unit:07d}

Cursor keys spread per cursor. The ledger holds one record per enqueued unit (not per item),
so a job's records share one partition key: one Query reads what earlier runs enqueued
(sk < RUN#{run}), and one more what this run recorded past its checkpoint. A job writes its
ledger at one TransactWriteItems per SendMessageBatch, far below a partition's limits.
"""

from __future__ import annotations

import hashlib

WALK_SK = "WALK"
CURSOR_SK = "CURSOR"


def walk_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def cursor_pk(job_id: str, run_id: int, cursor: str) -> str:
    digest = hashlib.sha256(cursor.encode()).hexdigest()
    return f"JOB#{job_id}#RUN#{run_id}#CURSOR#{digest}"


def ledger_pk(job_id: str) -> str:
    return f"JOB#{job_id}#LEDGER"


def ledger_run_prefix(run_id: int) -> str:
    """Sorts before every unit of the run, after every unit of the runs before it."""
    return f"RUN#{run_id:06d}#"


def ledger_sk(run_id: int, unit: int) -> str:
    return f"{ledger_run_prefix(run_id)}UNIT#{unit:07d}"
