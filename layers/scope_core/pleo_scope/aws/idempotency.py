"""A trigger runs once per job within the idempotency window (Powertools' idempotency, its
records in IDEMPOTENCY_TABLE_NAME): a repeat returns the stored result without calling Pleo.

Only a finished (`done: true`) result is stored. A `done: false` one travels past Powertools
as an exception, which makes it drop its record: a repeated trigger then asks again who owns
the walk, instead of replaying an answer that may name an execution which has ended since.

The persistence layer is made on the first trigger, not when the wiring is built: Powertools'
registers a hook on its DynamoDB client when made, which would make the (lazy) client then.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from pleo_scope.contract import JobRef

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient

type Result = dict[str, Any]


def record_key(job: JobRef) -> str:
    """The job id alone for the default tenant (the key records had before tenants, which
    therefore still answer), the job id and company for a company's trigger."""
    return job.job_id if job.company_id is None else f"{job.job_id}#{job.company_id}"


RECORD_KEY_FUNCTION = "app._scope_claimed_job"
"""Part of every record's key: the function the records were first keyed by, so that those
stored before a deploy still answer after it."""


class _Unfinished(Exception):
    """Carries a `done: false` result past the idempotency layer (see the module's doc)."""

    def __init__(self, result: Result) -> None:
        super().__init__("walk continues")
        self.result = result


def _finished_only(trigger: dict[str, str], step: Callable[[], Result]) -> Result:
    result = step()
    if not result["done"]:
        raise _Unfinished(result)
    return result


class IdempotentTriggers:
    def __init__(self, table: str, client: DynamoDBClient, expires_after_seconds: int) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="jobId",
            expires_after_seconds=expires_after_seconds,
            raise_on_no_idempotency_key=True,
        )
        self._table = table
        self._client = client
        self._once: Callable[..., Result] | None = None
        self._lock = threading.Lock()

    def run(self, job: JobRef, step: Callable[[], Result], context: LambdaContext) -> Result:
        """`step`'s result, or the stored one of an earlier trigger of the job by the same
        company (a trigger naming another company never gets this one's result: it runs,
        and is refused as TenantMismatch)."""
        self.config.register_lambda_context(context)  # Powertools' time-out of a record
        try:
            return self._idempotent()(trigger={"jobId": record_key(job)}, step=step)
        except _Unfinished as unfinished:
            return unfinished.result

    def _idempotent(self) -> Callable[..., Result]:
        with self._lock:
            if self._once is None:
                store = DynamoDBPersistenceLayer(table_name=self._table, boto3_client=self._client)
                function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "test-func")
                self._once = idempotent_function(
                    data_keyword_argument="trigger",
                    config=self.config,
                    persistence_store=store,
                    key_prefix=f"{function}.{RECORD_KEY_FUNCTION}",
                )(_finished_only)
            return self._once
