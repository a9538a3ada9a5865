"""Model lifecycle: the stage transition table and the promotion rules."""

from __future__ import annotations

import math

import pytest

from cryptosmarttrader.domain.model_canary import (
    TRANSITIONS,
    CanaryPolicy,
    IllegalStageTransitionError,
    ModelStage,
    OosScore,
    judge,
    transition,
)

POLICY = CanaryPolicy(min_samples=500, min_auc_gain=0.01, max_brier_increase=0.0)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in ModelStage for t in ModelStage if t not in TRANSITIONS[c]],
)
def test_every_transition_outside_the_table_raises(current: ModelStage, target: ModelStage) -> None:
    with pytest.raises(IllegalStageTransitionError, match=f"{current} model cannot become"):
        transition(current, target)


def test_the_canary_path_and_the_rollback_restore_are_legal() -> None:
    stage = ModelStage.REGISTERED
    for nxt in (
        ModelStage.SHADOW,
        ModelStage.CANARY,
        ModelStage.PRODUCTION,
        ModelStage.ARCHIVED,
        ModelStage.PRODUCTION,
        ModelStage.REJECTED,
    ):
        stage = transition(stage, nxt)
    assert TRANSITIONS[ModelStage.REJECTED] == frozenset()


def test_candidate_beating_the_incumbent_by_the_margin_advances() -> None:
    decision = judge(
        OosScore(1_000, 0.72, 0.10, 0.3),
        OosScore(1_000, 0.70, 0.11, 0.2),
        drift_blocked=False,
        policy=POLICY,
    )
    assert decision.verdict == "advance"


@pytest.mark.parametrize(
    ("candidate", "blocked", "reason"),
    [
        (OosScore(1_000, 0.705, 0.10, 0.3), False, "gain +0.0050 < 0.01"),  # not by the margin
        (OosScore(1_000, 0.75, 0.12, 0.3), False, "Brier 0.1200 vs incumbent 0.1100"),
        (OosScore(100, 0.75, 0.10, 0.3), False, "only 100 matured"),
        (OosScore(1_000, 0.75, 0.10, 0.3), True, "drift alarm blocks"),
        (OosScore(1_000, math.nan, 0.10, 0.3), False, "AUC undefined"),
    ],
)
def test_rollback_reasons(candidate: OosScore, blocked: bool, reason: str) -> None:
    decision = judge(
        candidate, OosScore(1_000, 0.70, 0.11, 0.2), drift_blocked=blocked, policy=POLICY
    )
    assert decision.verdict == "rollback"
    assert any(reason in r for r in decision.reasons), decision.reasons


def test_without_an_incumbent_the_bar_is_a_random_ranking() -> None:
    assert (
        judge(OosScore(600, 0.515, 0.1, 0.1), None, drift_blocked=False, policy=POLICY).verdict
        == "advance"
    )
    assert (
        judge(OosScore(600, 0.505, 0.1, 0.1), None, drift_blocked=False, policy=POLICY).verdict
        == "rollback"
    )


def test_canary_capital_share_is_capped() -> None:
    with pytest.raises(ValueError):
        CanaryPolicy(capital_fraction=0.2)


def test_brier_is_reported_not_gated_by_default() -> None:
    # Given a candidate that ranks better but whose raw probabilities are less calibrated
    better_rank_worse_brier = OosScore(1_000, 0.75, 0.20, 0.3)
    # When judged with the default policy / Then it advances (the ensemble calibrates downstream)
    assert (
        judge(
            better_rank_worse_brier, OosScore(1_000, 0.70, 0.11, 0.2), drift_blocked=False
        ).verdict
        == "advance"
    )
