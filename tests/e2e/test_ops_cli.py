"""The operator CLI (`pleo-scope-ops`) against the local stack: the Pleo simulator and moto's
server over HTTP, the function reached through moto's Lambda API (routed to the handler in
this process), the real ASL for the walks handed over."""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import click
import pytest

from pleo_scope.aws.keys import ledger_pk, ledger_sk
from pleo_scope.contract import JobRef
from tooling.build.template import TEMPLATE, Template
from tooling.ops.cli import EXIT_STUCK, main
from tooling.ops.resources import OUTPUT_OF
from tooling.ops.retrigger import FunctionFailed, NotTheFunctionsAnswer, answer
from tooling.pleo_sim import Fault, SimJob
from tooling.reports.robustness import CrashAt, InjectedCrash
from tooling.testkit.assertions import assert_published_exactly_once
from tooling.testkit.cli_runner import CliRunner
from tooling.testkit.executions import follow_walk
from tooling.testkit.harness import Stack
from tooling.testkit.local_function import trigger_rule_pattern
from tooling.testkit.local_stack import route_lambda
from tooling.testkit.loop import INVOCATION_SECONDS
from tooling.testkit.ops_cli import NO_NAMES, ops, ops_json, stack_names, table_rows


@pytest.fixture
def routed(stack: Stack) -> Iterator[list[dict[str, Any]]]:
    """moto's Lambda (the CLI's invocations and the state machine's) runs the handler."""
    with route_lambda(stack.app.lambda_handler, INVOCATION_SECONDS) as invocations:
        yield invocations


def stopping(stack: Stack, victim: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """The loop's second invocation for `victim` stops its execution (an operator, a
    redeploy) and dies: the walk is left where its checkpoint is."""
    sfn = stack.aws.client("stepfunctions")
    calls = {"n": 0}

    def handle(event: dict[str, Any], context: Any) -> Any:
        if event.get("jobId") == victim and "continuation" in event:
            calls["n"] += 1
            if calls["n"] == 2:
                for execution in sfn.list_executions(
                    stateMachineArn=stack.aws.physical["ScopeJobStateMachine"],
                    statusFilter="RUNNING",
                )["executions"]:
                    if victim in execution["name"]:
                        sfn.stop_execution(executionArn=execution["executionArn"], error="Stopped")
                raise RuntimeError("stopped by an operator")
        return handler(event, context)

    return handle


def published_job(stack: Stack, items: int = 45) -> SimJob:
    job = stack.new_job(items=items)
    assert stack.invoke({"jobId": job.id})["done"] is True
    stack.drain_queue()
    return job


def crashed_job(stack: Stack) -> SimJob:
    """A trigger whose invocation died mid-walk: no lease held, no execution: stuck."""
    job = stack.new_job(items=45)
    with stack.app.app.injected(observer=CrashAt("page_fetched", 2)), pytest.raises(InjectedCrash):
        stack.invoke({"jobId": job.id})
    return job


# -- the command line itself -----------------------------------------------------------------


def test_the_console_script_is_this_cli_and_every_command_has_help() -> None:
    project = tomllib.loads((TEMPLATE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"pleo-scope-ops": "tooling.ops.cli:main"}
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0
    assert set(main.commands) == {"status", "list", "retrigger", "verify", "tenant"}
    tenant = main.commands["tenant"]
    assert isinstance(tenant, click.Group)
    assert set(tenant.commands) == {"add", "show", "list", "disable", "enable", "set-credential"}
    commands = [[c] for c in main.commands if c != "tenant"]
    commands += [["tenant", c] for c in tenant.commands]
    for command in commands:
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, command
        assert f"Usage: main {' '.join(command)}" in result.output
        assert "--json" in result.output


def test_the_stack_outputs_the_cli_reads_exist_and_name_the_right_resources() -> None:
    outputs = Template.load().document["Outputs"]
    assert outputs[OUTPUT_OF["scope_table"]]["Value"] == {"Ref": "ScopeTable"}
    assert outputs[OUTPUT_OF["bucket"]]["Value"] == {"Ref": "ScopeBucket"}
    assert outputs[OUTPUT_OF["state_machine_arn"]]["Value"] == {"Ref": "ScopeJobStateMachine"}
    assert outputs[OUTPUT_OF["function_name"]]["Value"] == {"Ref": "ScopeJobFunction"}
    assert outputs[OUTPUT_OF["event_bus"]]["Value"] == {"Ref": "EventBusName"}
    assert outputs[OUTPUT_OF["event_source"]]["Value"] == {"Ref": "EventSource"}


def test_the_dlq_texts_cite_the_redrive_count_from_its_one_place() -> None:
    template = Template.load()
    count = template.document["Mappings"]["ScopeQueue"]["Redrive"]["MaxReceiveCount"]
    in_map = {"Fn::FindInMap": ["ScopeQueue", "Redrive", "MaxReceiveCount"]}
    assert template.properties("ScopeQueue")["RedrivePolicy"]["maxReceiveCount"] == in_map
    text, variables = template.properties("ScopeDeadLetterAlarm")["AlarmDescription"]["Fn::Sub"]
    assert "received ${MaxReceiveCount} times" in text
    assert variables == {"MaxReceiveCount": in_map}
    output = template.document["Outputs"]["ScopeDeadLetterQueueUrl"]["Description"]
    assert not re.search(r"\d+ times", output)
    assert count == 3  # docs/operating.md and docs/contract.md say 3


def test_bad_input_gets_a_clear_error(stack: Stack) -> None:
    not_a_uuid = ops(stack, "status", "job-42")
    assert not_a_uuid.exit_code == 2
    assert "'job-42' is not an export job id (a UUID)" in not_a_uuid.output
    unknown = ops(stack, "status", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "has no walk record" in unknown.output
    no_table = CliRunner().invoke(
        main, ["--endpoint-url", stack.aws.endpoint, "list"], env=NO_NAMES
    )
    assert no_table.exit_code == 2
    assert "no scope table: give --stack, --table or SCOPE_TABLE_NAME" in no_table.output
    no_stack = CliRunner().invoke(
        main, ["--endpoint-url", stack.aws.endpoint, "--stack", "nope", "list"], env=NO_NAMES
    )
    assert no_stack.exit_code == 1
    assert "stack 'nope'" in no_stack.output


# -- status ---------------------------------------------------------------------------------


def test_status_of_a_published_job(stack: Stack) -> None:
    job = published_job(stack)
    job_id = job.id
    scope = stack.expected_scope(job)
    in_scope = scope.count(b"\n")

    table = ops(stack, "status", job_id.upper())  # any letter case, as the function accepts
    assert table.exit_code == 0, table.output
    rows = table_rows(table.stdout)
    assert rows["job"] == job_id
    assert rows["state"].startswith("published")
    assert rows["phase"] == "published"
    assert rows["pages fetched"] == "5"
    assert rows["items in scope"] == str(in_scope)
    assert rows["items published"] == f"{in_scope} of {in_scope}"
    bucket = stack.aws.physical["ScopeBucket"]
    assert rows["scope"] == f"s3://{bucket}/export-jobs/{job_id}/runs/000001/scope.jsonl (written)"
    assert rows["consumers read"] == "run 1 (the job's scope.json names it)"
    assert rows["execution"] == "none"

    status = ops_json(stack, "status", job_id)
    assert status["state"] == "published"
    assert status["nextStep"] is None
    assert (status["phase"], status["runId"], status["pagesFetched"]) == ("published", 1, 5)
    assert status["itemsInScope"] == in_scope
    assert status["scope"]["written"] is True
    assert status["lease"]["held"] is False
    assert status["execution"] is None  # done in one invocation: never handed over


def test_status_watch_follows_a_handed_over_walk_to_published(
    stack: Stack, routed: list[dict[str, Any]]
) -> None:
    # 40 pages of 100 ms: more than one 2.5-second invocation can walk (with 20, the trigger
    # sometimes walked them all and only the rebuild was left to the loop: no "walking" bar).
    job = stack.new_job(items=400)
    stack.simulator.inject(job.id, Fault("latency", seconds=0.1))
    first = stack.invoke({"jobId": job.id}, timeout_seconds=INVOCATION_SECONDS)
    assert first["done"] is False

    running = ops_json(stack, "status", job.id)
    assert running["state"] == "running"
    assert running["execution"]["status"] == "RUNNING"
    assert running["execution"]["arn"] == first["handedOver"]["executionArn"]

    watched = ops(stack, "status", job.id, "--watch", "--interval", "0.2")
    assert watched.exit_code == 0, watched.output
    assert "walking" in watched.stderr  # the progress bar
    assert "state" in watched.stdout
    assert "published" in watched.stdout
    assert follow_walk(stack.aws, job.id).final["status"] == "SUCCEEDED"
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))

    as_lines = ops(stack, "status", job.id, "--watch", "--json")
    assert as_lines.exit_code == 0
    assert [json.loads(line)["state"] for line in as_lines.stdout.splitlines()] == ["published"]


# -- list and retrigger: the stuck job ----------------------------------------------------------


def test_a_stuck_job_is_listed_first_and_retrigger_brings_it_to_published(
    stack: Stack, routed: list[dict[str, Any]]
) -> None:
    published = published_job(stack).id
    stuck_job = crashed_job(stack)
    stuck = stuck_job.id
    # An invocation in flight elsewhere: it holds the job's lease.
    in_flight_job = stack.new_job(items=45).id
    checkpoints = stack.app.app.checkpoints
    in_flight = checkpoints.begin(JobRef(in_flight_job), "another-invocation", 600, None)
    try:
        listed = ops_json(stack, "list")
        mine = [s for s in listed if s["jobId"] in (published, stuck, in_flight_job)]
        assert [(s["jobId"], s["state"]) for s in mine] == [
            (stuck, "stuck"),
            (in_flight_job, "running"),
        ]
        assert listed[0]["state"] == "stuck"
        table = ops(stack, "list")
        assert table.exit_code == 0
        rows = table.stdout.splitlines()
        assert rows[0].split() == [
            "job", "company", "state", "phase", "run", "pages", "published", "age", "lease",
            "execution",
        ]  # fmt: skip
        assert rows[2].split()[:3] == [listed[0]["jobId"], "default", "stuck"]
        assert "stuck: re-send the trigger with `pleo-scope-ops retrigger JOB`" in table.stdout
        with_published = ops_json(stack, "list", "--all")
        assert published in [s["jobId"] for s in with_published]

        status = ops(stack, "status", stuck)
        assert status.exit_code == EXIT_STUCK
        assert "stuck: no invocation holds the lease and no execution runs the walk" in (
            status.stdout
        )
        assert f"re-send the trigger: pleo-scope-ops retrigger {stuck}" in status.stdout

        before = len(routed)
        sent = ops(stack, "retrigger", stuck)
        assert sent.exit_code == 0, sent.output
        assert f'sent "Export Job Claimed" for {stuck}' in sent.stdout
        assert "asynchronously" in sent.stdout
        (invocation,) = routed[before:]
        event = invocation["event"]
        assert event["detail-type"] == "Export Job Claimed"
        assert event["source"] == "pleo.export-jobs"
        assert event["detail"] == {"jobId": stuck}
        assert invocation["result"]["done"] is True

        assert ops_json(stack, "status", stuck)["state"] == "published"
        assert stuck not in [s["jobId"] for s in ops_json(stack, "list")]
        assert_published_exactly_once(stack, stuck, stack.expected_scope(stuck_job))
        assert ops(stack, "verify", stuck).exit_code == 0
    finally:
        checkpoints.release(in_flight)


def test_a_walk_whose_execution_was_stopped_is_stuck_until_its_trigger_is_re_sent(
    stack: Stack,
) -> None:
    """The loop's invocation dies while its execution is stopped (a person, a redeploy):
    `list` puts the job first, `status` says what to do, `retrigger` continues the walk from
    its checkpoint under a new execution, to published."""
    job = stack.new_job(items=300)  # 30 pages of 100 ms: several 2.5-second invocations
    stack.simulator.inject(job.id, Fault("latency", seconds=0.1))
    with route_lambda(stopping(stack, job.id, stack.app.lambda_handler), INVOCATION_SECONDS):
        first = stack.invoke({"jobId": job.id}, timeout_seconds=INVOCATION_SECONDS)
        stopped = follow_walk(stack.aws, job.id).final
    assert stopped["status"] in ("ABORTED", "FAILED")

    listed = ops_json(stack, "list")
    states = [s["state"] for s in listed]
    # Stuck ones first, then failed ones (other tests' jobs), then running ones.
    assert states == sorted(states, key=["stuck", "failed", "running"].index)
    (mine,) = [s for s in listed if s["jobId"] == job.id]
    assert mine["state"] == "stuck"
    assert mine["execution"]["arn"] == first["handedOver"]["executionArn"]
    assert mine["execution"]["status"] == stopped["status"]
    status = ops(stack, "status", job.id)
    assert status.exit_code == EXIT_STUCK
    rows = table_rows(status.stdout)
    assert rows["state"] == (
        f"stuck: no invocation holds the lease and its last execution is {stopped['status']}"
    )
    assert rows["next step"].startswith(f"re-send the trigger: pleo-scope-ops retrigger {job.id}")
    pages_before = int(rows["pages fetched"])

    with route_lambda(stack.app.lambda_handler, INVOCATION_SECONDS) as invocations:
        sent = ops(stack, "retrigger", job.id)
        assert sent.exit_code == 0, sent.output
        resumed = invocations[0]["result"]
        assert resumed["pagesFetched"] > pages_before  # from the checkpoint, not the start
        if not resumed["done"]:  # handed over again, to a new execution
            assert resumed["handedOver"]["executionArn"] != first["handedOver"]["executionArn"]
            assert follow_walk(stack.aws, job.id).final["status"] == "SUCCEEDED"
    assert ops_json(stack, "status", job.id)["state"] == "published"
    assert job.id not in [s["jobId"] for s in ops_json(stack, "list")]
    assert_published_exactly_once(stack, job.id, stack.expected_scope(job))
    assert ops(stack, "verify", job.id).exit_code == 0


def test_retrigger_waits_for_the_result_or_the_error(
    stack: Stack, routed: list[dict[str, Any]]
) -> None:
    job_id = published_job(stack).id
    again = ops(stack, "retrigger", job_id, "--wait")
    assert again.exit_code == 0, again.output
    assert "synchronously" in again.stdout
    assert "done" in again.stdout
    stored = f"export-jobs/{job_id}/runs/000001/scope.jsonl"  # within the idempotency window
    assert f"s3://{stack.aws.physical['ScopeBucket']}/{stored}" in (again.stdout)
    assert stack.drain_queue() == []  # the ledger keeps every item off the queue

    not_claimed = stack.new_job(items=5, status="pending")
    failed = ops(stack, "retrigger", not_claimed.id, "--wait")
    assert failed.exit_code == 1
    assert "JobNotClaimed" in failed.output


def test_retrigger_via_the_bus_puts_the_event_the_rule_matches(stack: Stack) -> None:
    """moto's EventBridge cannot deliver to Lambda: the rule's pattern, from the template,
    delivers to a queue here, which receives exactly the event the CLI put."""
    template = Template.load()
    source = template.document["Parameters"]["EventSource"]["Default"]
    events, sqs = stack.aws.client("events"), stack.aws.client("sqs")
    bus = events.create_event_bus(Name=f"ops-{uuid.uuid4().hex[:8]}")["EventBusArn"].split("/")[-1]
    target = sqs.create_queue(QueueName=f"{bus}-target")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = trigger_rule_pattern(template)
    events.put_rule(Name="claimed", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="claimed", EventBusName=bus, Targets=[{"Id": "q", "Arn": target_arn}])
    job_id = str(uuid.uuid4())

    sent = ops(
        stack, "--event-bus", bus, "--event-source", source, "retrigger", job_id, "--via", "bus"
    )
    assert sent.exit_code == 0, sent.output
    assert f"to event bus {bus} (as an event)" in sent.stdout
    (message,) = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)["Messages"]
    delivered = json.loads(message["Body"])
    assert delivered["detail"] == {"jobId": job_id}
    assert delivered["detail-type"] == "Export Job Claimed"
    assert ops(stack, "retrigger", job_id, "--via", "bus").exit_code == 2  # which bus?


# -- verify ---------------------------------------------------------------------------------


def test_verify_catches_a_tampered_scope_and_a_missing_ledger_record(stack: Stack) -> None:
    job_id = published_job(stack, items=450).id  # about 300 in scope: 3 units of 100
    clean = ops(stack, "verify", job_id)
    assert clean.exit_code == 0, clean.output
    assert f"{job_id}: verified" in clean.stdout
    checks = ops_json(stack, "verify", job_id)
    assert checks["ok"] is True
    assert [c["check"] for c in checks["checks"]] == [
        "manifest",
        "pointer",
        "sha256",
        "item count",
        "counts by status",
        "order",
        "serialisation",
        "ledger",
    ]

    s3 = stack.aws.client("s3")
    bucket = stack.aws.physical["ScopeBucket"]
    key = f"export-jobs/{job_id}/runs/000001/scope.jsonl"
    original = stack.s3_object(key)
    lines = original.splitlines(keepends=True)
    try:
        # Two lines swapped: same bytes counted, different order and digest.
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join([lines[1], lines[0], *lines[2:]]))
        swapped = ops_json(stack, "verify", job_id, exit_code=1)
        assert swapped["ok"] is False
        differs = {c["check"]: c["detail"] for c in swapped["checks"] if not c["ok"]}
        assert set(differs) == {"sha256", "order"}
        assert "line 1" in differs["order"]
        # One item's status changed by hand.
        item = json.loads(lines[0])
        item["status"] = "pending" if item["status"] != "pending" else "in_progress"
        tampered = json.dumps(item, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        s3.put_object(Bucket=bucket, Key=key, Body=b"".join([tampered, *lines[1:]]))
        edited = ops(stack, "verify", job_id)
        assert edited.exit_code == 1
        assert "DIFFERENCES FOUND" in edited.stdout
        verdict = ops_json(stack, "verify", job_id, exit_code=1)
        failed = {c["check"] for c in verdict["checks"] if not c["ok"]}
        assert failed == {"sha256", "counts by status"}
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
    assert ops(stack, "verify", job_id).exit_code == 0

    # A unit's ledger record lost: its items are not known to have been enqueued.
    table = stack.aws.physical["ScopeTable"]
    dynamodb = stack.app.app.dynamodb
    unit_key = {"pk": {"S": ledger_pk(job_id)}, "sk": {"S": ledger_sk(1, 1)}}
    unit = dynamodb.get_item(TableName=table, Key=unit_key, ConsistentRead=True)["Item"]
    first, count = int(unit["firstPosition"]["N"]), int(unit["itemCount"]["N"])
    dynamodb.delete_item(TableName=table, Key=unit_key)
    missing = ops(stack, "verify", job_id)
    assert missing.exit_code == 1
    verdict = ops_json(stack, "verify", job_id, exit_code=1)
    (ledger,) = [c for c in verdict["checks"] if c["check"] == "ledger"]
    assert ledger["ok"] is False
    lost = json.loads(lines[first])["accountingEntryId"]
    assert ledger["detail"].startswith(f"line {first} ({lost}) has no ledger record")
    assert ledger["detail"].endswith(f"and {count - 5} more")
    # The same unit recorded twice (as if a later run had enqueued it again).
    dynamodb.put_item(TableName=table, Item=unit)
    dynamodb.put_item(TableName=table, Item={**unit, "sk": {"S": ledger_sk(2, 0)}})
    verdict = ops_json(stack, "verify", job_id, exit_code=1)
    (ledger,) = [c for c in verdict["checks"] if c["check"] == "ledger"]
    assert ledger["detail"].startswith(f"line {first} ({lost}) was enqueued 2 times")
    dynamodb.delete_item(TableName=table, Key={**unit_key, "sk": {"S": ledger_sk(2, 0)}})
    assert ops(stack, "verify", job_id).exit_code == 0


def test_verify_of_a_job_not_yet_scoped_says_so(stack: Stack) -> None:
    result = ops(stack, "verify", crashed_job(stack).id)
    assert result.exit_code == 1
    assert "phase walking: run 1's scope is written once its walk ends" in result.stdout


# -- a deployed stack, found by its name ----------------------------------------------------


def test_a_stack_name_finds_the_resources_in_its_cloudformation_outputs(stack: Stack) -> None:
    job_id = published_job(stack).id
    physical = stack.aws.physical
    outputs = {
        OUTPUT_OF["scope_table"]: physical["ScopeTable"],
        OUTPUT_OF["bucket"]: physical["ScopeBucket"],
        OUTPUT_OF["state_machine_arn"]: physical["ScopeJobStateMachine"],
        OUTPUT_OF["function_name"]: physical["ScopeJobFunction"],
    }
    deployed = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    name = f"deployed-{uuid.uuid4().hex[:8]}"
    stack.aws.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(deployed)
    )
    result = CliRunner().invoke(
        main,
        ["--endpoint-url", stack.aws.endpoint, "--stack", name, "status", job_id, "--json"],
        env=NO_NAMES,
    )
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["state"] == "published"
    assert (
        status["scope"]["uri"]
        == f"s3://{physical['ScopeBucket']}/export-jobs/{job_id}/runs/000001/scope.jsonl"
    )
    assert ops(stack, "--stack", name, "verify", job_id).exit_code == 0


def test_the_local_stack_is_found_from_the_function_s_own_environment(stack: Stack) -> None:
    """Next to the local stack (AWS_ENDPOINT_URL and the function's variables set), no
    option is needed."""
    job_id = published_job(stack).id
    result = CliRunner().invoke(main, ["status", job_id, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "published"


# -- answers, resources and hints ------------------------------------------------------------


def test_retrigger_wait_accepts_only_the_function_s_answer(stack: Stack) -> None:
    """Without the handler behind it, moto's Lambda echoes the event back: that is not a
    ScopeJob result, and the CLI says so instead of printing `done None`."""
    job_id = str(uuid.uuid4())
    echoed = ops(stack, "retrigger", job_id, "--wait")
    assert echoed.exit_code == 1
    assert f"function {stack.aws.physical['ScopeJobFunction']} answered" in echoed.output
    assert "not a ScopeJob result (jobId is None" in echoed.output


def test_answers_the_function_gives_and_answers_it_does_not() -> None:
    job = str(uuid.uuid4())
    done = {
        "jobId": job,
        "done": True,
        "itemsInScope": 3,
        "pagesFetched": 1,
        "scope": {"bucket": "b", "key": "k", "manifestKey": "m"},
    }
    assert answer("f", job, json.dumps(done).encode(), None) == done
    going_on = {"jobId": job, "done": False, "continuation": {"runId": 1, "handOver": 1}}
    assert answer("f", job, json.dumps(going_on).encode(), None) == going_on
    typed = {"errorType": "JobNotClaimed", "errorMessage": "job is pending"}
    with pytest.raises(FunctionFailed, match="function f failed: JobNotClaimed: job is pending"):
        answer("f", job, json.dumps(typed).encode(), "Unhandled")
    for raw, error in [
        (b"null", None),
        (json.dumps({"done": None}).encode(), None),
        (json.dumps({**done, "jobId": str(uuid.uuid4())}).encode(), None),
        (json.dumps({**done, "scope": None}).encode(), None),
        (json.dumps({"jobId": job, "done": False}).encode(), None),
        (b"Simple Lambda happy path OK", None),
        (json.dumps({"errorType": "KeyError", "errorMessage": "x"}).encode(), "Unhandled"),
        (json.dumps({"errorMessage": "Task timed out"}).encode(), "Unhandled"),
    ]:
        with pytest.raises(NotTheFunctionsAnswer, match="function f answered"):
            answer("f", job, raw, error)


def test_options_work_after_the_subcommand_and_win_over_the_group_s(stack: Stack) -> None:
    job_id = published_job(stack).id
    after = CliRunner().invoke(
        main, ["status", job_id, "--json", *stack_names(stack)], env=NO_NAMES
    )
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["state"] == "published"
    wrong_then_right = CliRunner().invoke(
        main,
        [
            *stack_names(stack),
            "--table",
            "wrong",
            "verify",
            job_id,
            "--table",
            stack.aws.physical["ScopeTable"],
        ],
        env=NO_NAMES,
    )
    assert wrong_then_right.exit_code == 0, wrong_then_right.output


def test_every_aws_error_names_its_resource(stack: Stack) -> None:
    job_id = str(uuid.uuid4())
    no_table = ops(stack, "status", job_id, "--table", "no-such-table")
    assert no_table.exit_code == 1
    assert "AWS said ResourceNotFoundException for table no-such-table" in no_table.output
    bus = ops(stack, "retrigger", job_id, "--via", "bus", "--event-bus", "no-such-bus")
    assert bus.exit_code == 1
    assert "no-such-bus" in bus.output


def test_a_missing_region_or_credentials_say_to_source_the_local_stack_s_env() -> None:
    bare = {**NO_NAMES, "AWS_DEFAULT_REGION": None, "AWS_REGION": None, "AWS_PROFILE": None}
    bare |= {"AWS_CONFIG_FILE": "/nonexistent", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    job_id = str(uuid.uuid4())
    no_region = CliRunner().invoke(main, ["status", job_id, "--table", "t"], env=bare)
    assert no_region.exit_code == 1
    assert "no AWS region" in no_region.output
    assert "set -a; . out/ops.env; set +a" in no_region.output
    no_credentials = {
        **bare,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = CliRunner().invoke(main, ["status", job_id, "--table", "t"], env=no_credentials)
    assert result.exit_code == 1
    assert "no AWS credentials" in result.output
    assert "set -a; . out/ops.env; set +a" in result.output
