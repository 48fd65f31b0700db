"""template.yaml, admission: the rule feeds a queue, the queue feeds the function at a bounded
concurrency, one trigger per invocation, each reported on its own, redelivered only after
its invocation cannot still be running; poison goes to a dead-letter queue that alarms."""

from __future__ import annotations

from tooling.build.template import Template

TEMPLATE = Template.load()
FUNCTION = "ScopeJobFunction"


def parameter_default(name: str) -> int:
    return int(TEMPLATE.document["Parameters"][name]["Default"])


def test_the_rule_targets_the_admission_queue_not_the_function() -> None:
    rule = TEMPLATE.properties("ExportJobClaimedRule")
    assert rule["EventPattern"]["detail-type"] == ["Export Job Claimed"]
    assert rule["EventBusName"] == {"Ref": "EventBusName"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AdmissionQueue", "Arn"]}
    events = TEMPLATE.properties(FUNCTION)["Events"]
    assert [e["Type"] for e in events.values()] == ["SQS"]  # no EventBridge rule on the function


def test_the_event_source_bounds_concurrency_and_reports_each_trigger() -> None:
    (source,) = TEMPLATE.properties(FUNCTION)["Events"].values()
    properties = source["Properties"]
    assert properties["Queue"] == {"Fn::GetAtt": ["AdmissionQueue", "Arn"]}
    assert properties["BatchSize"] == 1
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "AdmissionMaximumConcurrency"}
    }
    # Room beside the admission slots for the loop's invocations (large walks).
    reserved = TEMPLATE.properties(FUNCTION)["ReservedConcurrentExecutions"]
    assert 2 <= parameter_default("AdmissionMaximumConcurrency") < reserved


def test_a_trigger_is_not_delivered_again_while_its_invocation_may_run() -> None:
    queue = TEMPLATE.properties("AdmissionQueue")
    timeout = TEMPLATE.document["Globals"]["Function"]["Timeout"]
    assert queue["VisibilityTimeout"] > timeout
    assert "FifoQueue" not in queue  # a standard queue (fair when senders set a group)
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["AdmissionDeadLetterQueue", "Arn"]
    }
    receives = TEMPLATE.document["Mappings"]["AdmissionQueue"]["Redrive"]["MaxReceiveCount"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {
        "Fn::FindInMap": ["AdmissionQueue", "Redrive", "MaxReceiveCount"]
    }
    assert receives >= 3  # transient failures get several tries before they count as poison


def test_the_function_knows_its_slice_and_where_to_set_triggers_aside() -> None:
    env = TEMPLATE.environment(FUNCTION)
    assert env["ADMISSION_SLICE_SECONDS"] == {"Ref": "AdmissionSliceSeconds"}
    assert env["ADMISSION_DEAD_LETTER_QUEUE_URL"] == {"Ref": "AdmissionDeadLetterQueue"}
    timeout = TEMPLATE.document["Globals"]["Function"]["Timeout"]
    assert parameter_default("AdmissionSliceSeconds") < timeout


def test_the_admission_dead_letter_queue_alarms() -> None:
    alarm = TEMPLATE.properties("AdmissionDeadLetterAlarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["AdmissionDeadLetterQueue", "QueueName"]
    }
    outputs = TEMPLATE.document["Outputs"]
    assert outputs["AdmissionQueueUrl"]["Value"] == {"Ref": "AdmissionQueue"}
    assert outputs["AdmissionDeadLetterQueueUrl"]["Value"] == {"Ref": "AdmissionDeadLetterQueue"}
