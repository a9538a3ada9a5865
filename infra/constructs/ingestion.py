"""Ingestion: one EventBridge rule per (exchange, timeframe) invoking the ingest function."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager
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
from infra.constructs.nag import acknowledge
from infra.constructs.python_function import (
    PythonFunction,
)
from infra.constructs.state_tables import StateTables

INGEST_HANDLER: Final = "cryptosmarttrader.handlers.ingest.handler"
INGEST_SERVICE: Final = "cst-ingest"
# Where the secrets' names reach the function: JSON {exchange: secret ARN} (never a key value)
READ_ONLY_SECRETS_ENV: Final = "CST_READ_ONLY_SECRETS"


class Ingestion(Construct):
    """ccxt public OHLCV → quality gate → Parquet lake, on a schedule per exchange/timeframe;
    daily, the CoinGecko market caps of the same pairs' coins into the lake's market-cap dataset.

    Grants: lake objects read/write under the candle, market-cap, funding, sentiment and
    withdrawals prefixes only (merging a day's partition needs the existing object), state table
    read/write (watermarks), and read of each ``read_only_keys`` exchange's read-only keys
    secret (the signed currency data: withdrawal fees and suspensions). No order or position
    access, never the execution function's trading keys.
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
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.lambda_ = PythonFunction(
            self,
            "Ingest",
            code=code,
            handler=INGEST_HANDLER,
            description="Fetches closed OHLCV candles via ccxt and writes them to the Parquet lake",
            service_name=INGEST_SERVICE,
            environment=environment,
            memory_mb=config.ingest_function.memory_mb,
            timeout=Duration.seconds(config.ingest_function.timeout_seconds),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
        )
        role = self.lambda_.role
        grant_lake_objects(
            role,
            lake.bucket,
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            prefixes=(*LAKE_MARKET_DATA, *LAKE_AGENT_INPUTS),
            reason=(
                "Ingest merges Parquet objects under exchange=/timeframe=/symbol=/(date= or month=), "
                "dataset=market_cap/, dataset=funding/, dataset=sentiment/ and dataset=withdrawals/ keys "
                "known only at "
                "run time; the grant covers those prefixes of the lake bucket alone (never "
                "models/), with no delete."
            ),
        )
        grant_table(role, tables.state, ["GetItem", "PutItem", "UpdateItem", "Query"])
        self.read_only_keys = self._read_only_keys(config)

        self.rules: dict[tuple[str, str], events.Rule] = {
            (schedule.exchange, schedule.timeframe): self.lambda_.schedule(
                self,
                schedule.rule_id,
                schedule=events.Schedule.expression(schedule.cron.expression()),
                description=(
                    f"Ingest {schedule.timeframe} candles from {schedule.exchange} "
                    f"({schedule.symbols_label}), {schedule.cron.expression()} UTC"
                ),
                event=schedule.event(),
            )
            for schedule in config.ingest_schedules
        }
        self.market_cap_rule: events.Rule | None = None
        if config.market_caps is not None:
            caps = config.market_caps
            self.market_cap_rule = self.lambda_.schedule(
                self,
                "IngestMarketCaps",
                schedule=events.Schedule.expression(caps.cron.expression()),
                description=(
                    f"Ingest CoinGecko market caps of the coins of {caps.exchange}'s pairs "
                    f"({caps.symbols_label}), {caps.cron.expression()} UTC"
                ),
                event=caps.event(),
            )
        self.universe_rules: dict[str, events.Rule] = {
            universe.exchange: self.lambda_.schedule(
                self,
                universe.rule_id,
                schedule=events.Schedule.expression(universe.cron.expression()),
                description=(
                    f"Select {universe.exchange}'s liquid {universe.quote} universe (24h volume "
                    f">= {universe.min_quote_volume_usd:,.0f}, at most {universe.max_pairs}), "
                    f"{universe.cron.expression()} UTC"
                ),
                event=universe.event(),
            )
            for universe in config.universes
        }
        self.funding_rule: events.Rule | None = None
        if config.funding is not None:
            self.funding_rule = self.lambda_.schedule(
                self,
                "IngestFunding",
                schedule=events.Schedule.expression(config.funding.cron.expression()),
                description=(
                    f"Ingest {config.funding.exchange} perpetual funding rates and 8h mark "
                    f"candles of its universe, {config.funding.cron.expression()} UTC"
                ),
                event=config.funding.event(),
            )
        self.sentiment_rule: events.Rule | None = None
        if config.sentiment is not None:
            self.sentiment_rule = self.lambda_.schedule(
                self,
                "IngestSentiment",
                schedule=events.Schedule.expression(config.sentiment.cron.expression()),
                description=(
                    "Ingest the Crypto Fear & Greed index (alternative.me), "
                    f"{config.sentiment.cron.expression()} UTC"
                ),
                event=config.sentiment.event(),
            )

    def _read_only_keys(self, config: DeploymentConfig) -> dict[str, secretsmanager.Secret]:
        """One secret per exchange account for read-only (market-data) keys, readable by this
        function only. Created holding no keys (``{"keys": "none"}`` plus a random filler the
        function ignores); the operator writes ``{"api_key": ..., "secret": ...}`` with
        put-secret-value. The function gets the secrets' ARNs (never a value)."""
        secrets: dict[str, secretsmanager.Secret] = {}
        for exchange in config.read_only_keys:
            secret = secretsmanager.Secret(
                self,
                f"ReadOnlyKeys{exchange.capitalize()}",
                description=(
                    f"{exchange} READ-ONLY API keys for the ingest function (currency data: "
                    'withdrawal fees and suspensions): JSON {"api_key": ..., "secret": ...}; '
                    "never keys that may trade or withdraw (README_OPERATIONS.md)"
                ),
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"keys": "none"}),
                    generate_string_key="filler",
                ),
            )
            secret.grant_read(self.lambda_.function)
            output = CfnOutput(
                self,
                f"ReadOnlyKeysSecret{exchange.capitalize()}",
                value=secret.secret_arn,
                description=f"ARN of {exchange}'s read-only keys secret (put-secret-value)",
            )
            output.override_logical_id(f"ReadOnlyKeysSecret{exchange.capitalize()}")
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "Exchange API keys are issued by the exchange, not generated by AWS: a rotation "
                "is a new read-only key pair created on the exchange and written here with "
                "put-secret-value; the function reads it within its cache age (5 min).",
            )
            secrets[exchange] = secret
        if secrets:
            self.lambda_.function.add_environment(
                READ_ONLY_SECRETS_ENV,
                Stack.of(self).to_json_string({e: s.secret_arn for e, s in secrets.items()}),
            )
        return secrets
