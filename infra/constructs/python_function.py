"""A Python Lambda as this project runs every function: own role, own log group, DLQ, X-Ray.

Nothing here is specific to a use case; ingestion, scan and later concerns (execution, API,
kill-switch) each compose one ``PythonFunction`` and grant it exactly the resources it uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.bundling import LambdaCode
from infra.constructs.nag import acknowledge

RUNTIME: Final = lambda_.Runtime.PYTHON_3_12
# Graviton: every bundled wheel exists for manylinux aarch64 (bundling.LAMBDA_PYTHON_PLATFORM)
ARCHITECTURE: Final = lambda_.Architecture.ARM_64
METRICS_NAMESPACE: Final = "CryptoSmartTrader"
ASYNC_RETRY_ATTEMPTS: Final = 2
MAX_EVENT_AGE: Final = Duration.hours(1)
DLQ_RETENTION: Final = Duration.days(14)

_RETENTION: Final = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


class PythonFunction(Construct):
    """python3.12 / arm64 function with Powertools settings and a dead-letter queue.

    Asynchronous invocations (EventBridge) that still fail after ``ASYNC_RETRY_ATTEMPTS``
    retries, or wait longer than ``MAX_EVENT_AGE``, land in ``dead_letter_queue``, as do events
    EventBridge itself could not deliver; nothing fails silently.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: LambdaCode,
        handler: str,
        description: str,
        service_name: str,
        environment: Mapping[str, str],
        memory_mb: int,
        timeout: Duration,
        log_level: str,
        log_retention_days: int,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.code = code  # which bundle the function ships (tests measure it)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            (
                "This queue is itself the dead-letter queue: the Lambda on-failure "
                "destination and the EventBridge target DLQ of this function."
            ),
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=_RETENTION[log_retention_days],
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service_name}: logs, X-Ray and the grants its construct adds",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=code.code,
            description=description,
            role=self.role,
            memory_size=memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": log_level,
                **environment,
            },
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            reserved_concurrent_executions=reserved_concurrency,
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            (
                "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "support no resource-level permissions, so AWS requires Resource '*'."
            ),
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            (
                "python3.12 is the runtime the package and its pinned wheels are built and "
                "tested for (requires-python <3.13; bundles target cp312 manylinux)."
            ),
        )

    def schedule(
        self,
        scope: Construct,
        rule_id: str,
        *,
        schedule: events.Schedule,
        description: str,
        event: Mapping[str, object] | None = None,
        max_event_age: Duration = MAX_EVENT_AGE,
    ) -> events.Rule:
        """An EventBridge rule in ``scope`` invoking this function with ``event`` (None: the
        scheduled event itself), retried like the function's async invocations, undeliverable
        events to its dead-letter queue."""
        rule = events.Rule(scope, rule_id, description=description, schedule=schedule)
        rule.add_target(
            targets.LambdaFunction(
                self.function,
                event=None if event is None else events.RuleTargetInput.from_object(dict(event)),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=ASYNC_RETRY_ATTEMPTS,
                max_event_age=max_event_age,
            )
        )
        return rule
