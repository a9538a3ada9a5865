"""The scheduled deep health probe: the uptime SLI (``ProbeSuccess`` / ``ProbeFailure``).

An EventBridge rate rule runs the probe function every ``probe_every_minutes``; it makes the
same calls as ``GET /api/v1/health`` (a ``GetItem`` on the state table, ``HeadBucket`` on the lake, a
``GetParameter`` of the kill-switch, a TCP connect to the exchange when one is in use) and
publishes one uptime sample under ``Stage=<stage>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from cryptosmarttrader.domain import metric_names as mn
from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

PROBE_HANDLER: Final = "cryptosmarttrader.handlers.health_probe.handler"
PROBE_SERVICE: Final = mn.HEALTH_PROBE


class HealthProbe(Construct):
    """Probe function and its schedule.

    Grants, read-only and exactly the probe's calls: ``dynamodb:GetItem`` on the state table,
    ``s3:ListBucket`` on the lake bucket (what ``HeadBucket`` needs; no object access) and
    ``ssm:GetParameter`` on the kill-switch parameter.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: LambdaCode,
        config: DeploymentConfig,
        lake: DataLake,
        tables: StateTables,
        kill_switch: KillSwitch,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.lambda_ = PythonFunction(
            self,
            "Probe",
            code=code,
            handler=PROBE_HANDLER,
            description="Deep health probe (DynamoDB, S3, SSM, exchange): the stage's uptime SLI",
            service_name=PROBE_SERVICE,
            environment=environment,
            memory_mb=256,
            # The clients retry an unreachable service for a while; the probe still reports.
            timeout=Duration.seconds(60),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        role = self.lambda_.role
        grant_table(role, tables.state, ["GetItem"])
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket.bucket_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"], resources=[kill_switch.parameter.parameter_arn]
            )
        )

        minutes = config.probe_every_minutes
        self.rule = self.lambda_.schedule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            description=f"Deep health probe every {minutes} min (uptime SLI, Stage={config.stage})",
            # an undelivered probe older than one interval is superseded by the next one
            max_event_age=Duration.minutes(minutes),
        )
