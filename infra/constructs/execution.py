"""Hourly execution: the scan's decisions → RiskGuard → paper venue → fills, positions, risk level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.data_lake import DataLake
from infra.constructs.grants import LAKE_MARKET_DATA, grant_lake_objects, grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.nag import acknowledge
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

EXECUTION_HANDLER: Final = "cryptosmarttrader.handlers.execute.handler"
EXECUTION_SERVICE: Final = "cst-execution"


class Execution(Construct):
    """The execution function and its hourly schedule (after the hourly candles are ingested).

    Its bundle is the scan's dependencies plus ccxt (the testnet and live venues). Grants: lake
    objects read-only (bars to fill on and to value positions at); orders (read, status moves,
    new CLOSE orders when the RiskGuard flattens), positions (read, upsert); state (the paper
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
            prefixes=LAKE_MARKET_DATA,
            reason=(
                "Execution reads the hourly and daily Parquet partitions of the symbols it holds "
                "or decides on, known only at run time; read-only, candle and market-cap objects "
                "of the lake bucket only."
            ),
        )
        kill_switch.parameter.grant_read(role)
        kill_switch.parameter.grant_write(role)
        grant_table(role, tables.orders, ["GetItem", "PutItem", "UpdateItem", "Scan", "Query"])
        grant_table(role, tables.positions, ["GetItem", "PutItem", "Scan"])
        grant_table(role, tables.state, ["GetItem", "PutItem", "Query"])

        self.exchange_keys = self._venue(config)
        self.rule = self.lambda_.schedule(
            self,
            "Hourly",
            schedule=events.Schedule.expression(config.execution.cron.expression()),
            description=f"Execution cycle, {config.execution.cron.expression()} UTC",
            event={},
        )

    def _venue(self, config: DeploymentConfig) -> secretsmanager.Secret | None:
        """``testnet`` / ``live``: one secret for the exchange account, readable by this
        function only; the function gets its name (never its value) and the venue mode."""
        self.lambda_.function.add_environment("CST_VENUE_MODE", config.venue_mode)
        if config.venue_mode == "paper":
            return None
        secret = secretsmanager.Secret(
            self,
            "ExchangeKeys",
            description=(
                f"{config.default_exchange} {config.venue_mode} account keys for the execution "
                'function: JSON {"api_key": ..., "secret": ..., "password": ...} (docs/venues.md)'
            ),
        )
        secret.grant_read(self.lambda_.function)
        output = CfnOutput(
            self,
            "ExchangeKeysSecret",
            value=secret.secret_arn,
            description="ARN of the exchange account's keys secret (put-secret-value writes them)",
        )
        output.override_logical_id("ExchangeKeysSecret")
        self.lambda_.function.add_environment("CST_EXCHANGE_SECRET", secret.secret_arn)
        if config.live_golive_run is not None:
            self.lambda_.function.add_environment("CST_LIVE_GOLIVE_RUN", config.live_golive_run)
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Exchange API keys are issued by the exchange, not generated by AWS: a rotation is "
            "a new key pair created on the exchange and written here with put-secret-value; the "
            "function reads it within its cache age (5 min) without a redeploy.",
        )
        return secret
