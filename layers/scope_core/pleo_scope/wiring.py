"""Build the service from settings: once per Lambda container, once per demo or test run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from pleo_scope.aws.archive import S3ScopeArchive
from pleo_scope.aws.checkpoints import DynamoCheckpointStore
from pleo_scope.aws.hand_over import StepFunctionsHandOver
from pleo_scope.aws.ledger import DynamoPublishLedger
from pleo_scope.aws.queue import SqsScopeQueue
from pleo_scope.aws.secrets import SecretsManagerCredentialSource
from pleo_scope.clock import Clock, SystemClock
from pleo_scope.pleo_client import PleoClient
from pleo_scope.service import ScopeJobService, ServiceSettings
from pleo_scope.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Adaptive retries absorb DynamoDB and SQS throttling before the code sees it.
AWS_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=16,
)


# botocore logs whole request and response bodies at DEBUG (GetSecretValue's included,
# with the credential in it). Keep them quiet whatever level the function runs at.
for _noisy in ("botocore.parsers", "botocore.endpoint", "botocore.hooks"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@dataclass
class Wiring:
    settings: Settings
    service: ScopeJobService
    checkpoints: DynamoCheckpointStore
    secrets: SecretsProvider
    dynamodb: DynamoDBClient


def build(settings: Settings, *, clock: Clock | None = None) -> Wiring:
    clock = clock or SystemClock()
    session = boto3.session.Session()
    dynamodb = session.client("dynamodb", config=AWS_CONFIG)
    secrets = SecretsProvider(boto3_client=session.client("secretsmanager", config=AWS_CONFIG))
    credentials = SecretsManagerCredentialSource(
        secrets, settings.secret_arn, settings.secret_max_age_seconds
    )
    checkpoints = DynamoCheckpointStore(dynamodb, settings.scope_table, clock)
    service = ScopeJobService(
        pleo=PleoClient(settings.pleo, credentials, clock=clock),
        checkpoints=checkpoints,
        archive=S3ScopeArchive(session.client("s3", config=AWS_CONFIG), settings.bucket),
        queue=SqsScopeQueue(session.client("sqs", config=AWS_CONFIG), settings.queue_url),
        ledger=DynamoPublishLedger(dynamodb, settings.scope_table, clock),
        hand_over=StepFunctionsHandOver(
            session.client("stepfunctions", config=AWS_CONFIG), settings.state_machine_arn
        ),
        settings=ServiceSettings(
            max_pages=settings.max_pages, safety_margin_seconds=settings.safety_margin_seconds
        ),
        clock=clock,
    )
    return Wiring(settings, service, checkpoints, secrets, dynamodb)
