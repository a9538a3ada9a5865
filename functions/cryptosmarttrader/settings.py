"""Runtime settings, parsed once from the environment. Invalid → fail fast.

The same names are set by the CDK stacks on every Lambda and by the embedded local AWS for the
CLI, so one contract serves both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from cryptosmarttrader.domain.slo import DeploymentStage

if TYPE_CHECKING:  # numpy-backed: imported where the rule is built, not by lean handlers
    from cryptosmarttrader.domain.exit_rule import ExitRule

KILL_SWITCH_PARAM_DEFAULT = "/cst/kill-switch"
# The largest dust value (USD) accepted: 10 times the largest minimum order value of the venues
# traded (Binance spot: 5-10 USDT; Kraken and KuCoin: below that). A value above it would count
# holdings no venue refuses to sell as dust, never protected nor closed (a typo like 10000).
DUST_VALUE_MAX_USD = 100.0


class EnvSettings(BaseModel):
    """Flat settings read from environment variables, as pydantic-settings reads them (field
    ``name`` from ``<ENV_PREFIX><NAME>``, or from its ``validation_alias``; names are not
    case-sensitive; keyword arguments win over the environment; pydantic validates the strings)
    — without pydantic-settings' import cost (~0.3 s of a Lambda cold start)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ENV_PREFIX: ClassVar[str] = "CST_"

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**self._from_environment(given=set(values)), **values})

    @classmethod
    def _from_environment(cls, given: set[str]) -> dict[str, Any]:
        """Each field's environment value, keyed by field name (fields given as keyword
        arguments, by name or by alias, are left to them)."""
        environment = {key.lower(): value for key, value in os.environ.items()}
        found: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                keys = [str(choice) for choice in alias.choices]
            elif isinstance(alias, str):
                keys = [alias]
            else:
                keys = [cls.ENV_PREFIX + name]
            if name in given or given.intersection(keys):
                continue
            for key in keys:
                if key.lower() in environment:
                    found[name if alias is None else keys[0]] = environment[key.lower()]
                    break
        return found


class AwsResources(EnvSettings):
    """Names of the AWS resources the functions use (env prefix ``CST_``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    lake_bucket: str = Field(default="cst-lake-local", min_length=3)
    orders_table: str = Field(default="cst-orders", min_length=3)
    positions_table: str = Field(default="cst-positions", min_length=3)
    state_table: str = Field(default="cst-state", min_length=3)
    kill_switch_param: str = Field(
        default=KILL_SWITCH_PARAM_DEFAULT, pattern=r"^/[A-Za-z0-9_./-]+$"
    )
    region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")


class TradingSettings(EnvSettings):
    """Trading parameters (env prefix ``CST_``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data_source: Literal["recorded", "ccxt"] = "recorded"
    data_dir: Path | None = None
    model_dir: Path | None = None  # fitted ensemble bundle (cst evaluate --save-model)
    exchange: Literal["binance", "kraken", "kucoin"] = "binance"
    equity_usd: float = Field(default=100_000.0, gt=0)
    max_asset_fraction: float = Field(default=0.02, gt=0, le=1)
    confidence_gate: float = Field(default=0.8, ge=0, le=1)
    top_n: int = Field(default=20, ge=1, le=1000)
    strategy: str = Field(default="cst-scan-v1", pattern=r"^[A-Za-z0-9_.-]+$")
    # execution: the bars the paper venue fills on and values positions at, how long a scan's
    # decision stays sendable, and how long the venue waits for a market order's bar
    execution_timeframe: Literal["1h", "4h", "1d"] = "1h"
    # recorded data: rank every CoinGecko coin ("all", the research view) or only the coins the
    # paper venue can trade, i.e. with an unambiguous recorded exchange pair ("tradable", what a
    # deployment does: there the universe is the exchange's own pairs)
    universe: Literal["all", "tradable"] = "all"
    # the scan Lambda without a promoted ranking model (registry): by default it orders nothing
    # (BUYs become HOLD: "no promoted model: technical agent only, no trades");
    # CST_ALLOW_TECHNICAL_ONLY_TRADING=true is the explicit opt-in to paper trade on the
    # technical agent alone, which every output then states (the local demo, the e2e tests)
    allow_technical_only_trading: bool = False
    decision_valid_minutes: int = Field(default=120, ge=5, le=24 * 60)
    paper_max_wait_minutes: int = Field(default=360, ge=60, le=7 * 24 * 60)
    # the strategy's exit rule (domain/exit_rule.py), the same levels as the evaluation's label:
    # take profit and stop as fractions of the entry price, each confirmed on a second daily
    # close, and the time limit in days. The execution cycle places the exit when it is met.
    exit_take_profit: float = Field(default=1.0, gt=0, le=100)
    exit_stop_loss: float = Field(default=0.5, gt=0, lt=1)
    exit_max_days: int = Field(default=180, ge=1, le=3650)
    # a holding worth less than this (USD, at the scan's price; at its entry price when the
    # scan has none) is dust: what a close leaves below the venue's minimum amount / notional,
    # closed for trading. It neither blocks a new entry in its coin nor gets an exit row; a
    # new entry's fill adds to it (docs/venues.md, "Dust"). At least the venue's minimum
    # notional (Binance spot: 5 USDT on most pairs); 0 counts every holding as held. At most
    # DUST_VALUE_MAX_USD.
    dust_value_usd: float = Field(default=10.0, ge=0)

    @field_validator("dust_value_usd")
    @classmethod
    def _dust_value_bounded(cls, value: float) -> float:
        if value > DUST_VALUE_MAX_USD:
            raise ValueError(
                f"CST_DUST_VALUE_USD={value:g} is out of range: it must be between 0 and "
                f"{DUST_VALUE_MAX_USD:g} (USD); a holding worth less is counted as dust, never "
                "protected nor closed"
            )
        return value

    @property
    def exit_rule(self) -> ExitRule:
        from cryptosmarttrader.domain.exit_rule import ExitRule

        return ExitRule(
            take_profit=self.exit_take_profit,
            stop_loss=self.exit_stop_loss,
            max_days=self.exit_max_days,
        )


class DeploymentSettings(EnvSettings):
    """Which go-live stage this deployment serves (``CST_STAGE``: staging, canary or production)
    and whether it replays past instants (``CST_ALLOW_REPLAYS``).

    The CDK stack sets it on every function from its configuration (``-c cst:stage=canary``);
    the functions publish their SLIs dimensioned ``Stage=<stage>``, the dimension the go-live
    gates read. Any other value fails at the first use, never silently relabels a metric. Unset
    (local runs, tests) means ``staging``, the default of a new deployment.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: DeploymentStage = "staging"
    # ``CST_ALLOW_REPLAYS``: whether the execution function honours a replay instant (``at``).
    # Replays belong to local and replay deployments (`cst demo`, tests over recorded data); a
    # deployment trades on its own clock, so the stack sets it false unless its config asks
    # (``allow_replays``). Unset means false: a replay is never honoured by accident.
    allow_replays: bool = False


class VenueSettings(EnvSettings):
    """Where the execution function sends orders (env prefix ``CST_``), set by the stack from
    its CDK context (``-c cst:venue_mode=testnet``).

    ``venue_mode``: ``paper`` (default: the paper venue fills on recorded or lake bars),
    ``testnet`` (real orders on the exchange's sandbox) or ``live`` (real money; refused unless
    ``live_golive_run`` names a go-live run that passed staging and canary on this stack).
    ``exchange_secret`` is the NAME of the Secrets Manager secret holding the account's keys,
    never the keys themselves; they are read at run time and cached ``credentials_max_age``
    seconds, so a rotated key takes effect without a redeploy.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    venue_mode: Literal["paper", "testnet", "live"] = "paper"
    exchange_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")
    live_golive_run: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,80}$")
    credentials_max_age: int = Field(default=300, ge=0, le=3600)


class MlSettings(EnvSettings):
    """Where the model registry lives (env prefix ``CST_``), parsed once per process."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ENV_PREFIX: ClassVar[str] = "CST_"

    model_group: str = Field(default="cst-daily-ml", pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9])*$")
    model_registry: Literal["embedded", "sagemaker"] = "embedded"
    model_prefix: str = Field(default="models", pattern=r"^[A-Za-z0-9_./-]+$")
    model_bucket: str | None = None  # default: the lake bucket
    model_image_uri: str = ""  # the serving image (SageMaker registry only)
    model_endpoint: str | None = None  # serverless endpoint name (SageMaker predictor)
    # the endpoint serving the promoted ranking model (CST_RANKING_ENDPOINT): when set the scan
    # scores through it while it serves the promoted version (else, or on its errors, the
    # model's ml and ensemble agents abstain); unset, in process. At most 40 characters, so the per-version
    # names ``<endpoint>-v<N>-<sha8>`` fit SageMaker's 63
    ranking_endpoint: str | None = Field(
        default=None, max_length=40, pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9])*$"
    )
    # the SageMaker built-in XGBoost image the ranking endpoint runs (CST_RANKING_IMAGE_URI):
    # needed where ranking promotions deploy that endpoint
    ranking_image_uri: str = ""
    model_role_arn: str | None = None  # the SageMaker role models and training jobs run as
    training_image_uri: str = ""  # default: the region's Python 3.12 framework training image


_SM_NAME_RE = r"^[A-Za-z0-9/_+=.@:-]{1,2048}$"


class ReadOnlyKeySettings(EnvSettings):
    """The ingest function's read-only exchange keys (env prefix ``CST_``), set by the stack.

    ``read_only_secrets``: JSON ``{"binance": "<secret name or ARN>"}``, one Secrets Manager
    secret per exchange account holding READ-ONLY keys (never the execution function's trading
    keys); the keys are read at run time and cached ``credentials_max_age`` seconds. An exchange
    not named here has no read-only keys.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    read_only_secrets: dict[Literal["binance", "kraken", "kucoin"], str] = Field(
        default_factory=dict
    )
    credentials_max_age: int = Field(default=300, ge=0, le=3600)

    @field_validator("read_only_secrets", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("read_only_secrets")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for exchange, name in value.items():
            if not re.fullmatch(_SM_NAME_RE, name):
                raise ValueError(f"{exchange}: not a Secrets Manager secret name or ARN")
        return value
