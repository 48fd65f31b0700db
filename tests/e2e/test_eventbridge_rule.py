"""The template's EventBridge rule on moto, with the template's own SQS target (moto cannot
deliver to a Lambda or Step Functions target, and the rule no longer has one): it puts
"Export Job Claimed" from the configured source on the admission queue, and nothing else;
the function parses what it receives there as the trigger that was put on the bus."""

from __future__ import annotations

import json

from pleo_scope.contract import JobRef
from pleo_scope.events import ScopeRequest
from pleo_scope.sqs_trigger import parse_sqs_event
from tooling.build.template import Template
from tooling.testkit.admission_poller import lambda_event
from tooling.testkit.harness import Stack
from tooling.testkit.local_function import events_name_their_account, trigger_rule_pattern
from tooling.testkit.samples import load_event


def test_the_rule_puts_claimed_jobs_from_the_configured_source_on_the_admission_queue(
    stack: Stack,
) -> None:
    template = Template.load()
    rule = template.properties("ExportJobClaimedRule")
    assert rule["EventPattern"]["source"] == [{"Ref": "EventSource"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AdmissionQueue", "Arn"]}
    source = template.document["Parameters"]["EventSource"]["Default"]
    assert trigger_rule_pattern(template)["source"] == [source]

    events, sqs = stack.aws.client("events"), stack.aws.client("sqs")
    queue = stack.aws.physical["AdmissionQueue"]
    bus = events.create_event_bus(Name="rule-under-test")["EventBusArn"].split("/")[-1]
    events.put_rule(
        Name="export-job-claimed",
        EventBusName=bus,
        EventPattern=json.dumps(trigger_rule_pattern(template)),
    )
    events.put_targets(
        Rule="export-job-claimed",
        EventBusName=bus,
        Targets=[{"Id": target["Id"], "Arn": stack.aws.physical["AdmissionQueue.Arn"]}],
    )
    job_id = "8eb648ab-0000-4000-8000-0000000000e1"
    sample = load_event("eventbridge-export-job-claimed.json", job_id)
    entry = {
        "Source": sample["source"],
        "DetailType": sample["detail-type"],
        "Detail": json.dumps(sample["detail"]),
        "EventBusName": bus,
    }
    with events_name_their_account():  # as AWS does (moto leaves `account` out)
        events.put_events(
            Entries=[
                entry,
                {**entry, "Source": "someone.else"},
                {**entry, "DetailType": "Export Job Completed"},
            ]
        )
    try:
        received = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]
        )["Messages"]
        assert [json.loads(m["Body"])["detail"] for m in received] == [sample["detail"]]
        (trigger,) = parse_sqs_event(lambda_event(received[0], "arn:aws:sqs:eu-west-1:1:q"))
        assert trigger.error is None
        assert trigger.request == ScopeRequest(JobRef(job_id))
    finally:
        sqs.purge_queue(QueueUrl=queue)
