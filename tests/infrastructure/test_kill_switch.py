"""The kill-switch's infrastructure: a value CloudFormation never writes, an audit of every
writer, and an alarm function that can always run."""

from __future__ import annotations

from typing import Any

from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_iam import SWITCH, _common, _grants


def test_the_seed_function_may_only_create_the_parameter(synthesized: Synthesized) -> None:
    construct = synthesized.stack.kill_switch.seed_lambda
    assert _grants(synthesized, construct) == {
        **_common(synthesized, construct),
        SWITCH: {"ssm:PutParameter"},
    }


def test_the_audit_function_reads_the_switch_and_appends_to_the_audit_trail(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    construct = stack.kill_switch.audit_lambda
    assert construct is not None
    assert _grants(synthesized, construct) == {
        **_common(synthesized, construct),
        SWITCH: {"ssm:GetParameter"},
        synthesized.logical_id(stack.tables.state): {"dynamodb:PutItem"},
    }
    env = synthesized.resources[synthesized.logical_id(construct.function)]["Properties"][
        "Environment"
    ]["Variables"]
    assert env["CST_KILL_SWITCH_PARAM"] == "/cst/kill-switch"
    assert env["CST_STATE_TABLE"] == {"Ref": synthesized.logical_id(stack.tables.state)}


def _rules(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    audit = synthesized.stack.kill_switch.audit_lambda
    assert audit is not None
    function = synthesized.logical_id(audit.function)
    return {
        logical_id: rule["Properties"]
        for logical_id, rule in synthesized.resources_of_type("AWS::Events::Rule").items()
        if any(t["Arn"] == {"Fn::GetAtt": [function, "Arn"]} for t in rule["Properties"]["Targets"])
    }


def test_every_write_of_the_parameter_reaches_the_audit_function(
    synthesized: Synthesized,
) -> None:
    audit = synthesized.stack.kill_switch.audit_lambda
    assert audit is not None
    rules = _rules(synthesized)
    patterns = {r["EventPattern"]["detail-type"][0]: r["EventPattern"] for r in rules.values()}

    # CloudTrail's record of every SSM write call on the parameter (the principal; needs a trail)
    cloudtrail = patterns["AWS API Call via CloudTrail"]
    assert cloudtrail["source"] == ["aws.ssm"]
    assert cloudtrail["detail"]["eventSource"] == ["ssm.amazonaws.com"]
    assert set(cloudtrail["detail"]["eventName"]) == {
        "PutParameter", "DeleteParameter", "DeleteParameters", "LabelParameterVersion",
    }  # fmt: skip
    assert cloudtrail["detail"]["$or"] == [
        {"requestParameters": {"name": ["/cst/kill-switch"]}},
        {"requestParameters": {"names": ["/cst/kill-switch"]}},
    ]
    # Parameter Store's own change event (no trail needed, no principal)
    store = patterns["Parameter Store Change"]
    assert store == {
        "source": ["aws.ssm"],
        "detail-type": ["Parameter Store Change"],
        "detail": {"name": ["/cst/kill-switch"]},
    }
    # and undeliverable events wait in the function's dead-letter queue
    queue = synthesized.logical_id(audit.dead_letter_queue)
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_the_alarm_function_retries_failed_writes_and_dead_letters_them(
    synthesized: Synthesized,
) -> None:
    # CloudWatch invokes the alarm action asynchronously: a failed switch write (the handler
    # raises) is retried twice by Lambda, then kept in the function's dead-letter queue
    construct = synthesized.stack.observability.killswitch_lambda
    function = synthesized.logical_id(construct.function)
    queue = synthesized.logical_id(construct.dead_letter_queue)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )


def test_the_alarm_function_has_reserved_concurrency(synthesized: Synthesized) -> None:
    # Given account concurrency exhausted by other functions, the alarm function keeps its own
    # share: it can always run when a critical alarm fires
    construct = synthesized.stack.observability.killswitch_lambda
    props = synthesized.resources[synthesized.logical_id(construct.function)]["Properties"]
    assert props["ReservedConcurrentExecutions"] >= 2
