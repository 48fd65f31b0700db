"""The embedded AWS: moto's server on loopback, with every resource created from what
template.yaml declares (key schemas, TTL, FIFO and encryption flags, the state machine's ASL
and its substitutions), and the function's environment resolved the way CloudFormation would.

moto is configured to execute the ASL and to run Lambda without Docker; `route_lambda` sends
the state machine's Lambda invocations to the project's handler, in this process.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn,
)

from tooling.build.template import TEMPLATE, Template
from tooling.pleo_sim.app import TOKEN_PATH
from tooling.pleo_sim.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tooling.testkit import moto_speed

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION = "ScopeJobFunction"
SQS_ATTRIBUTES = (
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "RedrivePolicy",
)
LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "PleoExportScope",
}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalStack:
    endpoint: str
    stack: str
    physical: dict[str, str] = field(default_factory=dict)
    """Logical id -> what `Ref` gives (table name, bucket name, queue URL, ARN)."""
    function_env: dict[str, str] = field(default_factory=dict)
    service_endpoints: dict[str, str] = field(default_factory=dict)
    """Services served by a moto server of their own (service name -> its URL)."""

    def client(self, service: str) -> Any:
        """A boto3 client for this stack (AWS_ENDPOINT_URL is also set while it runs)."""
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]  # any service name
            endpoint_url=self.service_endpoints.get(service, self.endpoint),
            region_name=REGION,
        )


def short_invocation_settings(seconds: float) -> dict[str, str]:
    """Settings for an invocation of `seconds`: short worst cases, or no request would ever
    fit in its budget (the client starts none it could not finish)."""
    return {
        "SAFETY_MARGIN_SECONDS": str(min(20.0, seconds / 10)),
        "PLEO_CONNECT_TIMEOUT_SECONDS": str(min(3.0, seconds / 10)),
        "PLEO_READ_TIMEOUT_SECONDS": str(min(10.0, seconds / 4)),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _let_moto_continue_as_new() -> None:
    """moto 5.2 passes an optimised `states:startExecution` task's parameters to boto3 as the
    ASL spells them (StateMachineArn, Name, Input), where boto3 wants stateMachineArn, name,
    input, and the task fails. AWS accepts the ASL spelling, so the template keeps it and
    the local stand-in is taught to convert."""
    service = state_task_service_sfn.StateTaskServiceSfn
    original = service._normalise_parameters
    if getattr(original, "converts_case", False):
        return

    def normalise(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for key in ("StateMachineArn", "Name", "Input"):
                if key in parameters:
                    parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    normalise.converts_case = True  # type: ignore[attr-defined]
    service._normalise_parameters = normalise  # type: ignore[method-assign]


@contextmanager
def local_stack(
    pleo_base_url: str,
    *,
    secret_string: str = '{"apiKey": "sim-api-key"}',  # noqa: S107 - the simulator's key
    stack: str = "pleo-export-scope-local",
    overrides: dict[str, str] | None = None,
    substitutions: dict[str, str] | None = None,
    endpoint: str | None = None,
    service_endpoints: dict[str, str] | None = None,
) -> Iterator[LocalStack]:
    """Start moto, create the template's resources, and set the function's environment in
    os.environ (restored on exit). `overrides` change that environment; `substitutions`
    change the state machine's DefinitionSubstitutions (say, fewer iterations per execution).
    With `endpoint`, a moto server already running there is used (benchmarks run it in a
    process of its own, so that the function's process holds only the function). With
    `service_endpoints`, those services (say dynamodb) are another moto server's, given to the
    function as AWS_ENDPOINT_URL_<SERVICE>: services moto's integrations (a rule's SQS target,
    the state machine's tasks) do not join, so that one server's GIL does not serve them all."""
    _let_moto_continue_as_new()
    moto_speed.apply()
    server: ThreadedMotoServer | None = None
    if endpoint is None:
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
    port = int(endpoint.rsplit(":", 1)[1])
    saved = dict(os.environ)
    # MOTO_PORT: moto's ASL interpreter calls Lambda through the server on this port.
    os.environ.update(LOCAL_ENV, AWS_ENDPOINT_URL=endpoint, MOTO_PORT=str(port))
    try:
        httpx.post(
            f"{endpoint}/moto-api/config",
            json={
                "lambda": {"use_docker": False},
                "stepfunctions": {"execute_state_machine": True},
            },
        ).raise_for_status()
        local = LocalStack(endpoint, stack, service_endpoints=dict(service_endpoints or {}))
        _provision(local, Template.load(), pleo_base_url, secret_string, substitutions or {})
        # The template's AWS_ENDPOINT_URL is empty (AWS's endpoints); here it is moto.
        local.function_env["AWS_ENDPOINT_URL"] = endpoint
        for service, url in local.service_endpoints.items():
            local.function_env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        os.environ.update(local.function_env, **(overrides or {}))
        local.function_env.update(overrides or {})
        yield local
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if server is not None:
            server.stop()


def _provision(
    local: LocalStack,
    template: Template,
    pleo_url: str,
    secret: str,
    substitutions: dict[str, str],
) -> None:
    secrets = local.client("secretsmanager")
    secret_arn = secrets.create_secret(Name=f"{local.stack}/pleo-api", SecretString=secret)["ARN"]
    # The OAuth app managed-OAuth tenants refresh with: the simulator's own.
    client = {"clientId": DEFAULT_CLIENT_ID, "clientSecret": DEFAULT_CLIENT_SECRET}
    client_arn = secrets.create_secret(
        Name=f"{local.stack}/pleo-oauth-client", SecretString=json.dumps(client)
    )["ARN"]
    parameters = {
        name: str(spec.get("Default", "")) for name, spec in template.document["Parameters"].items()
    }
    parameters.update(
        PleoApiBaseUrl=pleo_url,
        PleoApiSecretArn=secret_arn,
        PleoOAuthTokenUrl=f"{pleo_url}{TOKEN_PATH}",
        PleoOAuthClientSecretArn=client_arn,
    )
    resolve = _Resolver(local, parameters, template.document.get("Mappings", {}))
    # Keys first: a table's SSESpecification names its key.
    for logical_id in template.of_type("AWS::KMS::Key"):
        _create_key(local, logical_id, template.properties(logical_id), resolve)
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        _create_table(local, logical_id, template.properties(logical_id), resolve)
    for logical_id in template.of_type("AWS::S3::Bucket"):
        _create_bucket(local, logical_id, template.properties(logical_id))
    # Dead-letter queues first: the others' RedrivePolicy names them.
    queues = sorted(
        template.of_type("AWS::SQS::Queue"),
        key=lambda q: "RedrivePolicy" in template.properties(q),
    )
    for logical_id in queues:
        _create_queue(local, logical_id, template.properties(logical_id), resolve)
    local.physical[FUNCTION] = f"{local.stack}-{FUNCTION}"
    local.physical[f"{FUNCTION}.Arn"] = (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{local.physical[FUNCTION]}"
    )
    for logical_id in template.of_type("AWS::Serverless::StateMachine"):
        properties = template.properties(logical_id)
        properties["DefinitionSubstitutions"] = {
            **properties.get("DefinitionSubstitutions", {}),
            **substitutions,
        }
        _create_state_machine(local, logical_id, properties, resolve)
    local.function_env = {
        name: resolve(value) for name, value in template.environment(FUNCTION).items()
    }
    _create_function(local, template)


def _create_function(local: LocalStack, template: Template) -> None:
    """The function as Lambda knows it (name, handler, runtime, time-out): so that invoking a
    function that does not exist fails as in AWS. Its code runs in this process
    (`route_lambda`); the package is a placeholder."""
    role = local.client("iam").create_role(
        RoleName=f"{local.stack}-function",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        readme = "runs in the local stack's process (tooling/testkit/local_stack.py)\n"
        archive.writestr("README", readme)
    settings = {**template.document["Globals"]["Function"], **template.properties(FUNCTION)}
    local.client("lambda").create_function(
        FunctionName=local.physical[FUNCTION],
        Runtime=settings["Runtime"],
        Role=role,
        Handler=settings["Handler"],
        Timeout=int(settings["Timeout"]),
        MemorySize=int(settings["MemorySize"]),
        Code={"ZipFile": package.getvalue()},
    )


def _create_key(
    local: LocalStack, logical_id: str, props: dict[str, Any], resolve: _Resolver
) -> None:
    """A customer-managed KMS key with the template's key policy (moto keeps the policy; it
    does not evaluate it)."""
    key = local.client("kms").create_key(
        Description=resolve(props["Description"]),
        Policy=json.dumps(resolve.deep(props["KeyPolicy"])),
    )["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        local.client("kms").enable_key_rotation(KeyId=key["KeyId"])
    local.physical[logical_id] = key["KeyId"]
    local.physical[f"{logical_id}.Arn"] = key["Arn"]


def _create_table(
    local: LocalStack, logical_id: str, props: dict[str, Any], resolve: _Resolver
) -> None:
    dynamodb = local.client("dynamodb")
    name = f"{local.stack}-{logical_id}"
    declared = props["SSESpecification"]
    sse: dict[str, Any] = {"Enabled": declared["SSEEnabled"]}
    if declared.get("SSEType") == "KMS":  # a customer-managed key (else AWS's own)
        sse.update(SSEType="KMS", KMSMasterKeyId=resolve(declared["KMSMasterKeyId"]))
    dynamodb.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
        SSESpecification=sse,
    )
    ttl = props.get("TimeToLiveSpecification")  # none for records that never expire
    if ttl is not None:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"],
                "Enabled": ttl["Enabled"],
            },
        )
    local.physical[logical_id] = name
    local.physical[f"{logical_id}.Arn"] = dynamodb.describe_table(TableName=name)["Table"][
        "TableArn"
    ]


def _create_bucket(local: LocalStack, logical_id: str, props: dict[str, Any]) -> None:
    s3 = local.client("s3")
    name = f"{local.stack}-{logical_id}".lower()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(
        Bucket=name,
        # CloudFormation and the S3 API spell these differently.
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_versioning(
        Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
    )
    local.physical[logical_id] = name


def _create_queue(
    local: LocalStack, logical_id: str, props: dict[str, Any], resolve: _Resolver
) -> None:
    sqs = local.client("sqs")
    suffix = ".fifo" if props.get("FifoQueue") else ""
    attributes = {}
    for key in SQS_ATTRIBUTES:
        if key in props:
            value = props[key]
            if key == "RedrivePolicy":
                value = json.dumps({k: resolve(v) for k, v in value.items()})
            attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
    url = sqs.create_queue(QueueName=f"{local.stack}-{logical_id}{suffix}", Attributes=attributes)[
        "QueueUrl"
    ]
    local.physical[logical_id] = url
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    local.physical[f"{logical_id}.Arn"] = arn["QueueArn"]


def _create_state_machine(
    local: LocalStack, logical_id: str, props: dict[str, Any], resolve: _Resolver
) -> None:
    definition = (TEMPLATE.parent / props["DefinitionUri"]).read_text(encoding="utf-8")
    for name, value in props.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace(f"${{{name}}}", str(resolve(value)))
    name = resolve(props["Name"])
    arn = local.client("stepfunctions").create_state_machine(
        name=name,
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{local.stack}-state-machine",
        type=props.get("Type", "STANDARD"),
    )["stateMachineArn"]
    local.physical[logical_id] = arn


@dataclass
class _Resolver:
    """CloudFormation's Ref, GetAtt, FindInMap and Sub, for the values this template uses."""

    local: LocalStack
    parameters: dict[str, str]
    mappings: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> str:
        if isinstance(value, str | int | float):
            return str(value)
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self._get_att(logical_id, attribute)
        if "Fn::FindInMap" in value:
            name, key, attribute = (self(part) for part in value["Fn::FindInMap"])
            return str(self.mappings[name][key][attribute])
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        raise ValueError(f"cannot resolve {value!r} locally")

    def deep(self, value: Any) -> Any:
        """Every intrinsic inside a document (a key policy) resolved; the rest as it is."""
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            if any(key == "Ref" or key.startswith("Fn::") for key in value):
                return self(value)
            return {key: self.deep(v) for key, v in value.items()}
        return value

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        pseudo["AWS::StackName"] = self.local.stack
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.local.physical[name]

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id == FUNCTION and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.local.physical[FUNCTION]}"
        return self.local.physical[f"{logical_id}.{attribute}"]

    def _sub(self, expression: str) -> str:
        if "." in expression:
            logical_id, attribute = expression.split(".", 1)
            return self._get_att(logical_id, attribute)
        return self._ref(expression)


# -- Lambda in-process ------------------------------------------------------------------------


@dataclass
class LocalLambdaContext:
    """What the handler reads of a LambdaContext."""

    timeout_seconds: float
    function_name: str = "ScopeJobFunction"
    memory_limit_in_mb: int = 1769
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ScopeJobFunction"
    log_group_name: str = "/aws/lambda/ScopeJobFunction"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One invocation of the routed function, for its log line."""

    kind: str
    """"RequestResponse" or "Event" (what the caller asked for)."""
    event: dict[str, Any]
    seconds: float
    result: dict[str, Any] | None = None
    error: str | None = None


@contextmanager
def route_lambda(
    handler: Handler,
    timeout_seconds: float,
    *,
    events_in_background: bool = False,
    on_invocation: Callable[[Invocation], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Send moto's Lambda invocations (the CLI's, and the state machine's tasks) to `handler`
    in this process, each with a fresh context of `timeout_seconds`. Yields the invocation
    log. A function that was not created answers ResourceNotFoundException, as in AWS. With
    `events_in_background`, an asynchronous invocation (InvocationType Event) is accepted at
    once and runs in a thread of its own, as Lambda does; otherwise it runs before the 202 (a
    test then sees its effects as soon as the call returns). `on_invocation` hears of each."""
    original = LambdaSimpleBackend.invoke
    invocations: list[dict[str, Any]] = []

    def run(event: dict[str, Any], kind: str, response_headers: Any) -> bytes:
        started = time.monotonic()
        try:
            result = handler(event, LocalLambdaContext(timeout_seconds))
        except Exception as error:  # what the Lambda runtime reports for an unhandled error
            invocations.append({"event": event, "error": type(error).__name__})
            if on_invocation is not None:
                seconds = time.monotonic() - started
                on_invocation(Invocation(kind, event, seconds, error=_error_line(error)))
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = {"errorType": type(error).__name__, "errorMessage": str(error)}
            return json.dumps(payload).encode()
        invocations.append({"event": event, "result": result})
        if on_invocation is not None:
            on_invocation(Invocation(kind, event, time.monotonic() - started, result=result))
        return json.dumps(result).encode()

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        self.get_function(function_name, qualifier)  # UnknownFunctionException: a 404
        event = json.loads(body or "{}")
        kind = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if kind == "Event" and events_in_background:
            threading.Thread(
                target=run, args=(event, kind, {}), name="lambda-event", daemon=True
            ).start()
            return b""
        return run(event, kind, response_headers)

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield invocations
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


def _error_line(error: Exception) -> str:
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}"[:200]
