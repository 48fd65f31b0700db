"""Where the stack's resources are: explicit names (options or the function's own environment
variables, which the local stack sets), else a deployed stack's CloudFormation outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

# Resource -> the stack output that names it (template.yaml, Outputs).
OUTPUT_OF = {
    "scope_table": "ScopeTableName",
    "bucket": "ScopeBucketName",
    "state_machine_arn": "StateMachineArn",
    "function_name": "ScopeJobFunctionName",
    "event_bus": "EventBusName",
    "event_source": "EventSource",
    "tenant_table": "TenantTableName",
    "tenant_key_arn": "TenantKeyArn",
}
# Resource -> the environment variable that names it (the function's own names first).
ENV_OF = {
    "scope_table": "SCOPE_TABLE_NAME",
    "bucket": "SCOPE_BUCKET_NAME",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "function_name": "SCOPE_JOB_FUNCTION_NAME",
    "event_bus": "EVENT_BUS_NAME",
    "event_source": "EVENT_SOURCE",
    "tenant_table": "TENANT_TABLE_NAME",
    "tenant_key_arn": "TENANT_KEY_ARN",
}
# What to tell an operator who gave neither.
OPTION_OF = {
    "scope_table": "--table",
    "bucket": "--bucket",
    "state_machine_arn": "--state-machine-arn",
    "function_name": "--function",
    "event_bus": "--event-bus",
    "event_source": "--event-source",
    "tenant_table": "--tenant-table",
    "tenant_key_arn": "--tenant-key",
}

# Reads answer quickly; a synchronous invocation (`retrigger --wait`) may take 15 minutes.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, read_timeout=960)


class MissingResource(Exception):
    """A command needs a resource nobody named."""


class StackNotFound(Exception):
    """No CloudFormation stack of that name (or no access to it)."""


@dataclass(frozen=True)
class Resources:
    scope_table: str | None = None
    bucket: str | None = None
    state_machine_arn: str | None = None
    function_name: str | None = None
    event_bus: str | None = None
    event_source: str | None = None
    tenant_table: str | None = None
    tenant_key_arn: str | None = None

    def need(self, name: str) -> str:
        value: str | None = getattr(self, name)
        if not value:
            raise MissingResource(
                f"no {name.replace('_', ' ')}: give --stack, {OPTION_OF[name]} or {ENV_OF[name]}"
            )
        return value

    def or_else(self, fallback: Resources) -> Resources:
        """These names, with the blanks filled from `fallback`."""
        return replace(
            self,
            **{f.name: getattr(self, f.name) or getattr(fallback, f.name) for f in fields(self)},
        )


def from_outputs(outputs: dict[str, str]) -> Resources:
    return Resources(**{name: outputs.get(key) for name, key in OUTPUT_OF.items()})


def stack_outputs(client: CloudFormationClient, stack: str) -> dict[str, str]:
    try:
        reply = client.describe_stacks(StackName=stack)
    except client.exceptions.ClientError as error:
        raise StackNotFound(f"stack {stack!r}: {error.response['Error']['Message']}") from None
    (described,) = reply["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


# The request parameters that name what a call is about, and how to say it.
RESOURCE_PARAMETERS = (
    ("TableName", "table"),
    ("Bucket", "bucket"),
    ("FunctionName", "function"),
    ("stateMachineArn", "state machine"),
    ("executionArn", "execution"),
    ("EventBusName", "event bus"),
    ("StackName", "stack"),
    ("QueueUrl", "queue"),
)
LOCAL_STACK_HINT = "on the local stack: set -a; . out/ops.env; set +a"


@dataclass(frozen=True)
class Call:
    """One AWS request, as the CLI made it (for an error message that names its resource)."""

    service: str
    operation: str
    parameters: dict[str, Any]

    def resource(self) -> str:
        """What the call was about: "table X", "bucket Y (key Z)", "function F"..."""
        found = [
            f"{label} {self.parameters[name]}"
            for name, label in RESOURCE_PARAMETERS
            if self.parameters.get(name)
        ]
        entries = self.parameters.get("Entries")
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            bus = entries[0].get("EventBusName")
            found += [f"event bus {bus}"] if bus else []
        if self.parameters.get("Key") and found and found[0].startswith("bucket"):
            found[0] += f" (key {self.parameters['Key']})"
        return ", ".join(found) or f"{self.service} {self.operation}"


@dataclass
class Aws:
    """One boto3 session and its clients, all aimed at `endpoint_url` when given (otherwise
    boto3's own AWS_ENDPOINT_URL handling applies). Remembers the last request made, so that
    an error can say which table, bucket or function it concerns."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    last_call: Call | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            client = session.client(
                service,  # type: ignore[call-overload]  # any service name
                endpoint_url=self.endpoint_url,
                config=CLIENT_CONFIG,
            )
            client.meta.events.register("before-parameter-build", self._remember)
            self._clients[service] = client
        return self._clients[service]

    def _remember(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = str(model.service_model.service_name)
        self.last_call = Call(service, str(model.name), dict(params))


def resolve(
    explicit: Resources, stack: str | None, outputs: Callable[[str], dict[str, str]]
) -> Resources:
    """Explicit names win; a stack's outputs fill the rest."""
    return explicit.or_else(from_outputs(outputs(stack))) if stack else explicit
