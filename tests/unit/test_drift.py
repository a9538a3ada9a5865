"""Drift statistics on hand-made distributions (known answers) and the alarm rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosmarttrader.domain.drift import (
    DriftReference,
    DriftThresholds,
    assess_drift,
    calibration_check,
    ks_statistic,
    profile,
    psi,
)
from cryptosmarttrader.domain.types import DomainError

RNG = np.random.default_rng(7)


def test_same_distribution_is_stable() -> None:
    # Given a reference sample and a fresh sample of the same normal distribution
    ref = profile(RNG.normal(0, 1, 20_000))
    cur = RNG.normal(0, 1, 5_000)
    # When PSI and KS are computed / Then both say "no shift"
    assert psi(ref, cur) < 0.02
    assert ks_statistic(ref, cur) < 0.03


def test_shifted_distribution_is_flagged_with_the_known_ks_distance() -> None:
    # Given a reference N(0, 1) and a current N(1, 1): the true KS distance is
    # 2 * Phi(0.5) - 1 = 0.3829
    ref = profile(RNG.normal(0, 1, 20_000))
    cur = RNG.normal(1, 1, 20_000)
    # When / Then: KS recovers it within the quantile resolution (0.01) plus sampling noise
    assert ks_statistic(ref, cur) == pytest.approx(0.3829, abs=0.02)
    assert psi(ref, cur) > 0.25


def test_missing_values_count_as_their_own_bin() -> None:
    # Given a reference without gaps and a current sample with the same values but 40% missing
    values = RNG.normal(0, 1, 10_000)
    ref = profile(values)
    cur = values.copy()
    cur[:4_000] = np.nan
    # When / Then: the finite values match (KS ~ 0) but PSI sees the missing mass
    assert ks_statistic(ref, cur) < 0.03
    assert psi(ref, cur) > 1.0


def test_ks_of_a_constant_reference_is_exact() -> None:
    # Given a feature that is always 1.0 in training (e.g. full observation history)
    ref = profile(np.ones(1_000))
    # When half of the current rows have 0.5 / Then half the mass moved: D = 0.5
    assert ks_statistic(ref, np.r_[np.ones(50), np.full(50, 0.5)]) == pytest.approx(0.5)
    assert ks_statistic(ref, np.ones(10)) == pytest.approx(0.0)


def test_profile_round_trips_through_json() -> None:
    ref = profile(RNG.normal(0, 1, 500))
    assert type(ref).model_validate_json(ref.model_dump_json()) == ref


def test_calibration_check_measures_decay_against_the_reference() -> None:
    # Given outcomes drawn at 10% while the model says 40% everywhere
    y = (RNG.random(5_000) < 0.1).astype(np.float64)
    p = np.full(5_000, 0.4)
    check = calibration_check(p, y, reference_ece=0.02, reference_brier=0.09)
    # Then ECE is about |0.4 - 0.1| and the decay is that minus the reference
    assert check.ece == pytest.approx(0.3, abs=0.02)
    assert check.decay == pytest.approx(check.ece - 0.02)


def test_calibration_check_rejects_non_binary_outcomes() -> None:
    with pytest.raises(DomainError):
        calibration_check(np.array([0.5]), np.array([2.0]), reference_ece=0, reference_brier=0)


def _reference(n_features: int = 10) -> DriftReference:
    feats = {f"f{i}": profile(RNG.normal(0, 1, 5_000)) for i in range(n_features)}
    return DriftReference(
        features=feats,
        prediction=profile(RNG.beta(2, 8, 5_000)),
        oos_ece=0.03,
        oos_brier=0.1,
        window=("2019-01-01", "2019-06-30"),
    )


def test_one_drifting_feature_is_a_note_not_an_alarm() -> None:
    # Given a reference of 10 features and a window where only f0 moved
    ref = _reference()
    cur = {f"f{i}": RNG.normal(3.0 if i == 0 else 0.0, 1, 1_000) for i in range(10)}
    # When assessed
    report = assess_drift(ref, cur, RNG.beta(2, 8, 1_000), None)
    # Then f0 is flagged, but the share (10%) is under the 30% threshold: no alarm
    assert [f.name for f in report.features if f.drifted] == ["f0"]
    assert report.alarms == ()
    assert not report.blocks_promotion
    assert any("f0" in n for n in report.notes)


def test_broad_feature_drift_prediction_shift_and_decay_each_raise_an_alarm() -> None:
    ref = _reference()
    shifted = {f"f{i}": RNG.normal(2.0 if i < 5 else 0.0, 1, 1_000) for i in range(10)}
    decayed = calibration_check(
        np.full(1_000, 0.5),
        (RNG.random(1_000) < 0.1).astype(float),
        reference_ece=0.03,
        reference_brier=0.1,
    )
    report = assess_drift(ref, shifted, RNG.beta(8, 2, 1_000), decayed)
    assert report.blocks_promotion
    assert len(report.alarms) == 3
    assert "5/10 features drifted" in report.alarms[0]
    assert "prediction distribution shifted" in report.alarms[1]
    assert "calibration decayed" in report.alarms[2]


def test_too_few_rows_are_not_assessed() -> None:
    ref = _reference()
    cur = {f"f{i}": RNG.normal(5.0, 1, 50) for i in range(10)}
    report = assess_drift(ref, cur, RNG.beta(8, 2, 50), None, DriftThresholds(min_rows=200))
    assert report.alarms == ()
    assert any("not assessed" in n for n in report.notes)


def test_missing_feature_in_the_window_is_an_error() -> None:
    with pytest.raises(DomainError, match="lacks reference features"):
        assess_drift(_reference(2), {"f0": np.zeros(3)}, np.zeros(3), None)


def test_empty_current_window_gives_nan_not_zero() -> None:
    assert math.isnan(psi(profile(np.ones(10)), np.array([])))
