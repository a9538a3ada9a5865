"""Settings read the environment exactly as pydantic-settings did, without importing it.

Each settings class is compared, field for field, with the same fields declared on
pydantic-settings' ``BaseSettings`` (env prefix ``CST_``), under the same environment."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cryptosmarttrader.services.golive import GoLiveSettings
from cryptosmarttrader.services.model_registry import MlSettings
from cryptosmarttrader.settings import (
    AwsResources,
    DeploymentSettings,
    EnvSettings,
    TradingSettings,
    VenueSettings,
)

CLASSES: list[type[EnvSettings]] = [
    AwsResources,
    TradingSettings,
    DeploymentSettings,
    VenueSettings,
    GoLiveSettings,
    MlSettings,
]


def _reference(cls: type[EnvSettings]) -> type[BaseSettings]:
    """``cls``'s fields on pydantic-settings, as the settings were declared before."""
    namespace = {
        "__annotations__": {name: field.annotation for name, field in cls.model_fields.items()},
        **cls.model_fields,
        "model_config": SettingsConfigDict(
            env_prefix=cls.ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
        ),
    }
    return type(f"Reference{cls.__name__}", (BaseSettings,), namespace)


ENVIRONMENTS = [
    {},
    {"CST_LAKE_BUCKET": "my-lake", "AWS_REGION": "eu-west-1", "CST_REGION": "ignored"},
    {"cst_orders_table": "lower-case-name", "AWS_ENDPOINT_URL": "http://localhost:5000"},
    {"CST_EQUITY_USD": "2500.5", "CST_TOP_N": "7", "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true"},
    {"CST_DATA_DIR": "/data/x", "CST_UNIVERSE": "tradable", "CST_STAGE": "canary"},
    {"CST_ALLOW_REPLAYS": "1", "CST_VENUE_MODE": "testnet", "CST_CREDENTIALS_MAX_AGE": "60"},
    {"CST_EXCHANGE_SECRET": "", "CST_DATA_SOURCE": "ccxt", "CST_STRATEGY": "s-2"},
    {"CST_GOLIVE_MIN_UPTIME": "0.99", "CST_GOLIVE_TOPIC_ARN": "arn:x", "CST_MIN_UPTIME": "0.1"},
    {"CST_MODEL_REGISTRY": "sagemaker", "CST_MODEL_GROUP": "g-1", "CST_GOLIVE_MODEL_GROUP": "x"},
    {"CST_MODEL_REGISTRY": "unknown", "CST_GOLIVE_MAX_BURN_RATE": "not-a-number"},
]


@pytest.mark.parametrize("environment", ENVIRONMENTS, ids=range(len(ENVIRONMENTS)))
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_settings_read_the_environment_like_pydantic_settings(
    cls: type[EnvSettings], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment (and nothing else of ours in it)
    for key in [k for k in os.environ if k.upper().startswith(("CST_", "AWS_"))]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    # When both read it, Then they agree on every value, or both refuse it
    try:
        expected = _reference(cls)().model_dump()
    except ValidationError:
        with pytest.raises(ValidationError):
            cls()
        return
    assert cls().model_dump() == expected


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("CST_TOP_N", "7")
    assert AwsResources(region="ap-south-1").region == "ap-south-1"
    assert AwsResources(AWS_REGION="us-west-2").region == "us-west-2"
    assert AwsResources().region == "eu-west-1"
    assert TradingSettings(top_n=3).top_n == 3


def test_an_invalid_environment_value_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CST_STAGE", "prod")
    with pytest.raises(ValidationError, match="stage"):
        DeploymentSettings()
    monkeypatch.setenv("CST_KILL_SWITCH_PARAM", "no-leading-slash")
    with pytest.raises(ValidationError, match="kill_switch_param"):
        AwsResources()


@pytest.mark.parametrize("value", ["100.01", "10000", "inf"])
def test_a_dust_value_above_its_bound_fails_fast_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dust value a typo made far larger than any venue's minimum order value
    monkeypatch.setenv("CST_DUST_VALUE_USD", value)
    # Then the settings refuse it, naming the variable and the range allowed
    with pytest.raises(ValidationError, match=r"CST_DUST_VALUE_USD=.* between 0 and 100 \(USD\)"):
        TradingSettings()


@pytest.mark.parametrize("value", ["0", "5", "100"])
def test_a_dust_value_within_its_bound_is_read(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CST_DUST_VALUE_USD", value)
    assert TradingSettings().dust_value_usd == float(value)
    monkeypatch.setenv("CST_DUST_VALUE_USD", "-1")
    with pytest.raises(ValidationError, match="dust_value_usd"):
        TradingSettings()
