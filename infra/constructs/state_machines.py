"""Pieces every Step Functions machine of the stack shares: Lambda tasks that carry the
execution's correlation id, and machines with X-Ray tracing and full execution logging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.nag import acknowledge

EXECUTION_NAME = "$$.Execution.Name"


def lambda_task(
    scope: Construct,
    state_id: str,
    function: lambda_.IFunction,
    payload: Mapping[str, Any],
    result_path: str,
    comment: str | None = None,
) -> tasks.LambdaInvoke:
    """Invoke ``function`` with ``payload`` plus ``correlation_id`` = the execution name, so one
    id follows the execution into every task's logs; the task's result lands at ``result_path``."""
    return tasks.LambdaInvoke(
        scope,
        state_id,
        comment=comment,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(
            {**payload, "correlation_id": sfn.JsonPath.string_at(EXECUTION_NAME)}
        ),
        payload_response_only=True,
        result_path=result_path,
    )


def logged_state_machine(
    scope: Construct,
    machine_id: str,
    log_group_id: str,
    definition: sfn.IChainable,
    comment: str,
    wildcard_reason: str,
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """A traced machine logging every execution (with data) for a year; ``wildcard_reason`` is
    the written cdk-nag acknowledgement for the Resource '*' that tracing and log delivery need."""
    log_group = logs.LogGroup(
        scope,
        log_group_id,
        retention=logs.RetentionDays.ONE_YEAR,
        removal_policy=RemovalPolicy.DESTROY,
    )
    machine = sfn.StateMachine(
        scope,
        machine_id,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        comment=comment,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
        ),
    )
    acknowledge(machine.role, "AwsSolutions-IAM5[Resource::*]", wildcard_reason)
    return machine, log_group
