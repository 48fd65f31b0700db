"""The template's EventBridge rule, on moto with an SQS target (moto cannot deliver to a
Lambda or Step Functions target): it matches "Export Job Claimed" from the configured
source, and nothing else."""

from __future__ import annotations

import json

from tests.e2e.conftest import Stack, load_event
from tooling.build.template import Template


def test_the_rule_matches_claimed_jobs_from_the_configured_source_only(stack: Stack) -> None:
    template = Template.load()
    rule = template.properties("ScopeJobFunction")["Events"]["ExportJobClaimed"]["Properties"]
    source = template.document["Parameters"]["EventSource"]["Default"]
    pattern = {"source": [source], "detail-type": rule["Pattern"]["detail-type"]}
    assert rule["Pattern"]["source"] == [{"Ref": "EventSource"}]  # what we resolved above

    events = stack.aws.client("events")
    sqs = stack.aws.client("sqs")
    target = sqs.create_queue(QueueName="rule-target")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="export-job-claimed", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="export-job-claimed", Targets=[{"Id": "q", "Arn": target_arn}])

    sample = load_event(
        "eventbridge-export-job-claimed.json", "8eb648ab-0000-4000-8000-0000000000e1"
    )
    entry = {
        "Source": sample["source"],
        "DetailType": sample["detail-type"],
        "Detail": json.dumps(sample["detail"]),
    }
    events.put_events(
        Entries=[
            entry,
            {**entry, "Source": "someone.else"},
            {**entry, "DetailType": "Export Job Completed"},
        ]
    )
    received = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail"] for m in received] == [sample["detail"]]
    assert sample["source"] == source
