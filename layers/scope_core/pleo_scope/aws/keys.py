"""Where everything is kept: the S3 layout of a job, and the key design of the scope table.

S3 (contract v3: one immutable scope per run):
- raw pages:        export-jobs/{jobId}/pages/run-{runId:06d}/page-{n:07d}.json
- a run's scope:    export-jobs/{jobId}/runs/{runId:06d}/scope.jsonl   written once
- its manifest:     export-jobs/{jobId}/runs/{runId:06d}/scope.json    written once, after it
- the job's pointer: export-jobs/{jobId}/scope.json  a copy of the latest published run's
  manifest, written last

The scope table (one table, `pk` + `sk`, TTL on `expiresAt`):

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

SCOPE_FILE = "scope.jsonl"
MANIFEST_FILE = "scope.json"
WALK_SK = "WALK"
CURSOR_SK = "CURSOR"


def job_prefix(job_id: str) -> str:
    return f"export-jobs/{job_id}/"


def page_key(job_id: str, run_id: int, number: int) -> str:
    return f"{job_prefix(job_id)}pages/run-{run_id:06d}/page-{number:07d}.json"


def run_prefix(job_id: str, run_id: int) -> str:
    return f"{job_prefix(job_id)}runs/{run_id:06d}/"


def run_scope_key(job_id: str, run_id: int) -> str:
    return run_prefix(job_id, run_id) + SCOPE_FILE


def run_manifest_key(job_id: str, run_id: int) -> str:
    return run_prefix(job_id, run_id) + MANIFEST_FILE


def pointer_key(job_id: str) -> str:
    """The job's pointer: the manifest of its latest published run."""
    return job_prefix(job_id) + MANIFEST_FILE


def walk_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_of_walk_pk(pk: str) -> str:
    return pk.removeprefix(walk_pk(""))


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
