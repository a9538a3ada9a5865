"""Hourly execution: the scan's decisions → RiskGuard → paper venue → fills, positions, risk level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import grant_lake_objects, grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

EXECUTION_HANDLER: Final = "cryptosmarttrader.handlers.execute.handler"
EXECUTION_SERVICE: Final = "cst-execution"


class Execution(Construct):
    """The execution function and its hourly schedule (after the hourly candles are ingested).

    It shares the scan's bundle (same dependencies). Grants: lake objects read-only (bars to
    fill on and to value positions at); orders (read, status moves, new CLOSE orders when the
    RiskGuard flattens), positions (read, upsert), idempotency keys (claim); state (the paper
    venue's book with conditional writes, risk level and transitions); the kill-switch parameter
    read and write (entering EMERGENCY or SHUTDOWN turns it on). Reserved concurrency 1: one
    cycle at a time, as the risk level machine assumes a single writer.
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
            "Execution",
            code=code,
            handler=EXECUTION_HANDLER,
            description="Hourly execution: RiskGuard, paper venue fills, positions, risk level",
            service_name=EXECUTION_SERVICE,
            environment=environment,
            memory_mb=config.execution_function.memory_mb,
            timeout=Duration.seconds(config.execution_function.timeout_seconds),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
            reserved_concurrency=1,
        )
        role = self.lambda_.role
        grant_lake_objects(
            role,
            lake.bucket,
            ["s3:GetObject"],
            reason=(
                "Execution reads the hourly and daily Parquet partitions of the symbols it holds "
                "or decides on, known only at run time; read-only, objects of the lake bucket."
            ),
        )
        kill_switch.parameter.grant_read(role)
        kill_switch.parameter.grant_write(role)
        grant_table(role, tables.orders, ["GetItem", "PutItem", "UpdateItem", "Scan", "Query"])
        grant_table(role, tables.positions, ["GetItem", "PutItem", "Scan"])
        grant_table(role, tables.idempotency, ["GetItem", "PutItem", "UpdateItem"])
        grant_table(role, tables.state, ["GetItem", "PutItem", "Query"])

        self.rule = self.lambda_.schedule(
            self,
            "Hourly",
            schedule=events.Schedule.expression(config.execution.cron.expression()),
            description=f"Execution cycle, {config.execution.cron.expression()} UTC",
            event={},
        )
