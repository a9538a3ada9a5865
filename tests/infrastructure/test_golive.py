"""The go-live construct: state machine settings, least-privilege grants, encrypted alerts."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infrastructure.conftest import Synthesized


def _definition_text(synthesized: Synthesized) -> str:
    (machine,) = [
        r
        for lid, r in synthesized.resources_of_type("AWS::StepFunctions::StateMachine").items()
        if lid.startswith("GoLive")
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Every reference sits inside a JSON string of the ASL (an ARN): a placeholder keeps it valid
    return "".join(p if isinstance(p, str) else "<ref>" for p in parts)


def test_state_machine_is_traced_and_logs_everything(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like(
                {"Level": "ALL", "IncludeExecutionData": True}
            ),
        },
    )


def test_durations_come_from_the_execution_input(synthesized: Synthesized) -> None:
    # Given the synthesized definition (references replaced by placeholders)
    text = _definition_text(synthesized)
    asl: dict[str, Any] = json.loads(text)
    waits = {n: s for n, s in asl["States"].items() if s["Type"] == "Wait"}
    # Then both stage waits read their seconds from the validated input, none is fixed
    assert {n: s.get("SecondsPath") for n, s in waits.items()} == {
        "PaperTrading": "$.run.staging_seconds",
        "CanaryTrading": "$.run.canary_seconds",
    }
    # And the rollback ends the execution as a failure carrying the cause
    assert asl["States"]["RolledBack"] == {
        "Type": "Fail", "Error": "GoLive.RolledBack", "CausePath": "$.failure.Cause"
    }  # fmt: skip


def test_alert_topic_is_encrypted_with_a_rotated_key(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_step_function_grants_only_the_calls_it_makes(template: Template) -> None:
    # The steps role may scan and update orders and read/write the state table, nothing more
    policies = template.find_resources("AWS::IAM::Policy")
    steps = [p for lid, p in policies.items() if lid.startswith("GoLiveStepsRole")]
    assert len(steps) == 1
    actions = {
        a
        for statement in steps[0]["Properties"]["PolicyDocument"]["Statement"]
        for a in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert not any(a.endswith("*") for a in actions), actions
    assert {"dynamodb:Scan", "dynamodb:UpdateItem", "ssm:PutParameter"} <= actions
    assert "dynamodb:DeleteItem" not in actions
