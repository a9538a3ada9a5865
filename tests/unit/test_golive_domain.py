"""Go-live stages, parameters and the stage transition table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cryptosmarttrader.domain.golive import (
    DEFAULT_CANARY_SECONDS,
    DEFAULT_STAGING_SECONDS,
    GoLiveParams,
    IllegalStageTransitionError,
    Stage,
    StageTransition,
    stage_policy,
    transition,
)
from cryptosmarttrader.domain.types import DomainError


def _params(**overrides: object) -> GoLiveParams:
    return GoLiveParams.model_validate(
        {"run_id": "r1", "version": "v2", "previous_version": "v1", **overrides}
    )


def test_defaults_are_seven_days_and_seventy_two_hours_at_one_percent() -> None:
    params = _params()
    assert params.staging_seconds == DEFAULT_STAGING_SECONDS == 604_800
    assert params.canary_seconds == DEFAULT_CANARY_SECONDS == 259_200
    assert params.canary_risk_fraction == 0.01


def test_canary_risk_above_one_percent_is_refused() -> None:
    with pytest.raises(ValidationError, match="exceeds the canary's cap"):
        _params(canary_risk_fraction=0.02)


@pytest.mark.parametrize(
    "bad",
    [
        {"version": "v1"},
        {"staging_seconds": -1},
        {"slo_period_seconds": 90},
        {"run_id": "has space"},
        {"unknown": 1},
    ],
)
def test_invalid_parameters_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _params(**bad)


def test_slo_window_defaults_to_the_stage_rounded_up_to_whole_periods() -> None:
    # Given a 5-second staging and a 3-day canary
    params = _params(staging_seconds=5, canary_seconds=259_200)
    # Then the staging gate reads one period, the canary gate the whole 72 hours
    assert params.window_seconds(Stage.STAGING) == 60
    assert params.window_seconds(Stage.CANARY) == 259_200
    # And an explicit window overrides both
    assert _params(slo_window_seconds=3601).window_seconds(Stage.CANARY) == 3660
    with pytest.raises(DomainError):
        params.window_seconds(Stage.PRODUCTION)


def test_policy_per_stage() -> None:
    params = _params(canary_risk_fraction=0.005)
    assert stage_policy(Stage.STAGING, params).trading_mode == "paper"
    assert stage_policy(Stage.CANARY, params).risk_budget_fraction == 0.005
    assert stage_policy(Stage.PRODUCTION, params).risk_budget_fraction == 1.0
    assert stage_policy(Stage.ROLLED_BACK, params).trading_mode == "halted"


def test_transition_table() -> None:
    assert transition(Stage.PENDING, Stage.STAGING) is Stage.STAGING
    assert transition(Stage.CANARY, Stage.ROLLED_BACK) is Stage.ROLLED_BACK
    # A released version can still be rolled back by an operator
    assert transition(Stage.PRODUCTION, Stage.ROLLED_BACK) is Stage.ROLLED_BACK
    # A gate cannot be skipped, and a rolled-back run never resumes
    for current, target in [
        (Stage.STAGING, Stage.PRODUCTION),
        (Stage.PRODUCTION, Stage.CANARY),
        (Stage.ROLLED_BACK, Stage.STAGING),
    ]:
        with pytest.raises(IllegalStageTransitionError):
            transition(current, target)


def test_recorded_transition_needs_reason_utc_and_legality() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    StageTransition("r1", Stage.STAGING, Stage.CANARY, "gate passed", at, "system:golive")
    with pytest.raises(DomainError):
        StageTransition("r1", Stage.STAGING, Stage.CANARY, " ", at, "x")
    with pytest.raises(DomainError):
        StageTransition("r1", Stage.STAGING, Stage.CANARY, "ok", datetime(2024, 1, 1), "x")  # noqa: DTZ001
    with pytest.raises(IllegalStageTransitionError):
        StageTransition("r1", Stage.STAGING, Stage.PRODUCTION, "skip", at, "x")
