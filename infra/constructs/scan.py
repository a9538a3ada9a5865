"""The daily scan: lake → agents → ranking → RiskGuard → paper orders (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import (
    LAKE_AGENT_INPUTS,
    LAKE_MARKET_DATA,
    grant_lake_objects,
    grant_table,
)
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

SCAN_HANDLER: Final = "cryptosmarttrader.handlers.scan.handler"
SCAN_SERVICE: Final = "cst-scan"
SCAN_MODEL_VERSIONS: Final = "models/cst-rank/*"  # wiring.RANKING_GROUP's registered versions


class Scan(Construct):
    """Daily scan function and its schedule.

    Grants: lake objects read-only; kill-switch parameter read-only; orders (create, read,
    status update, list), positions (read, upsert, delete), state (risk transitions, audit).
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
            "Scan",
            code=code,
            handler=SCAN_HANDLER,
            description="Daily scan: agents, ensemble, RiskGuard and idempotent paper orders",
            service_name=SCAN_SERVICE,
            environment=environment,
            memory_mb=config.scan_function.memory_mb,
            timeout=Duration.seconds(config.scan_function.timeout_seconds),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        role = self.lambda_.role
        grant_lake_objects(
            role,
            lake.bucket,
            ["s3:GetObject"],
            prefixes=(*LAKE_MARKET_DATA, *LAKE_AGENT_INPUTS, SCAN_MODEL_VERSIONS),
            reason=(
                "The scan reads Parquet partitions whose keys depend on the universe and date, "
                "and the promoted ranking model's artefact (models/cst-rank/v<NNNN>/); "
                "read-only, the market-data datasets and that model group only."
            ),
        )
        kill_switch.parameter.grant_read(role)
        if config.ranking_endpoint is not None:
            # the promoted ranking model is scored by this endpoint (never in process on its
            # errors): the scan may invoke that one endpoint only, and describe it to check it
            # serves the promoted version before scoring (else the ranking abstains)
            self.lambda_.function.add_environment("CST_RANKING_ENDPOINT", config.ranking_endpoint)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
                    resources=[
                        Stack.of(self).format_arn(
                            service="sagemaker",
                            resource="endpoint",
                            resource_name=config.ranking_endpoint.lower(),
                        )
                    ],
                )
            )
        grant_table(role, tables.orders, ["GetItem", "PutItem", "UpdateItem", "Scan", "Query"])
        grant_table(role, tables.positions, ["GetItem", "PutItem", "DeleteItem", "Scan"])
        grant_table(role, tables.state, ["GetItem", "PutItem", "Query"])

        self.rule = self.lambda_.schedule(
            self,
            "Daily",
            schedule=events.Schedule.expression(config.scan.cron.expression()),
            description=f"Daily scan of the top {config.scan.top_n}, {config.scan.cron.expression()} UTC",
            event=config.scan.event(),
        )
