"""Per-date ranking metrics, the block bootstrap and the trivial rankers, with known answers."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from cryptosmarttrader.domain.skill_metrics import (
    TRIVIAL_RANKERS,
    block_bootstrap,
    block_length,
    non_overlapping_horizons,
    per_date_auc,
    per_date_precision_at_k,
    per_date_rank_ic,
    trivial_scores,
)

FRAME = pl.DataFrame(
    {
        "day": [1, 1, 1, 1, 2, 2, 2, 2],
        "score": [0.9, 0.8, 0.1, 0.2, 0.1, 0.2, 0.3, 0.4],
        "hit": [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        "ret": [2.0, -0.1, -0.5, 0.5, 1.5, 1.2, -0.2, -0.3],
    }
)


def test_precision_at_k_is_per_date() -> None:
    out = per_date_precision_at_k(FRAME, "score", "hit", 2)
    # day 1: top 2 = (0.9 hit, 0.8 miss) → 0.5; day 2: top 2 = (0.4, 0.3) both misses → 0
    assert out["value"].to_list() == [0.5, 0.0]
    # k larger than the day: everything taken
    assert per_date_precision_at_k(FRAME, "score", "hit", 10)["value"].to_list() == [0.5, 0.5]


def test_auc_per_date_counts_pairs_within_the_date_only() -> None:
    out = per_date_auc(FRAME, "score", "hit")
    # day 1: positives 0.9, 0.2; negatives 0.8, 0.1 → pairs won: (0.9>0.8, 0.9>0.1, 0.2>0.1) = 3/4
    # day 2: positives 0.1, 0.2 below both negatives → 0
    assert out["value"].to_list() == pytest.approx([0.75, 0.0])


def test_auc_ties_count_one_half_and_single_class_dates_are_left_out() -> None:
    frame = pl.DataFrame(
        {"day": [1, 1, 2, 2], "score": [0.5, 0.5, 0.1, 0.9], "hit": [1.0, 0.0, 1.0, 1.0]}
    )
    assert per_date_auc(frame, "score", "hit")["value"].to_list() == [0.5]


def test_rank_ic_is_spearman_per_date() -> None:
    out = per_date_rank_ic(FRAME, "score", "ret")
    # day 2: score ranks 1,2,3,4 vs return ranks 4,3,2,1 → -1
    assert out["value"][1] == pytest.approx(-1.0)
    # day 1: score ranks (4,3,1,2), return ranks (4,2,1,3): d² = 0+1+0+1 → 1 - 6*2/(4*15) = 0.8
    assert out["value"][0] == pytest.approx(0.8)


def test_block_bootstrap_covers_a_known_mean_about_95_percent_of_the_time() -> None:
    # Given 300 AR(1) series (phi 0.5, stationary, true mean 0.3) of 120 dates, blocks of 10
    rng = np.random.default_rng(1)
    trials, n, phi = 300, 120, 0.5
    e = rng.normal(size=(trials, n)) * math.sqrt(1 - phi**2)
    x = np.empty((trials, n))
    x[:, 0] = rng.normal(size=trials)
    for i in range(1, n):  # vectorized over the trials
        x[:, i] = phi * x[:, i - 1] + e[:, i]
    covered = sum(
        iv.ci_low <= 0.3 <= iv.ci_high
        for iv in (block_bootstrap(0.3 + 0.1 * x[t], 10, n_boot=400, seed=t) for t in range(trials))
    )
    # Then the 95 % interval holds the true mean close to 95 % of the time
    assert 0.88 <= covered / trials <= 0.99


def test_block_bootstrap_of_a_constant_is_that_constant() -> None:
    iv = block_bootstrap(np.full(30, 0.25), 5)
    assert (iv.value, iv.ci_low, iv.ci_high, iv.n_dates) == (0.25, 0.25, 0.25, 30)
    assert math.isnan(block_bootstrap(np.asarray([np.nan]), 3).value)


def test_block_length_and_horizon_count() -> None:
    assert block_length(7, 180) == 26
    assert non_overlapping_horizons(0, 720, 180) == pytest.approx(5.0)


def test_trivial_rankers_score_the_documented_direction() -> None:
    frame = pl.DataFrame(
        {
            "log_market_cap": [10.0, 20.0],
            "vol_30d": [0.1, 0.2],
            "ret_90d": [0.5, -0.5],
            "dd_365d": [-2.0, -0.1],
        }
    )
    out = trivial_scores(frame)
    assert set(TRIVIAL_RANKERS) == {
        "random", "smallest_market_cap", "highest_volatility_30d", "momentum_90d",
        "largest_drawdown_365d",
    }  # fmt: skip
    # the smaller coin, the more volatile, the stronger, the deeper drawdown rank first
    assert out["trivial_smallest_market_cap"].arg_max() == 0
    assert out["trivial_highest_volatility_30d"].arg_max() == 1
    assert out["trivial_momentum_90d"].arg_max() == 0
    assert out["trivial_largest_drawdown_365d"].arg_max() == 0
    # the random ranker is reproducible
    assert out["trivial_random"].to_list() == trivial_scores(frame)["trivial_random"].to_list()


def test_intervals_are_clipped_to_the_metric_range() -> None:
    values = np.asarray([0.0, 0.0, 0.05, 0.0, 0.6, 0.0, 0.0, 0.1])
    iv = block_bootstrap(values, 2, bounds=(0.0, 1.0))
    assert iv.ci_low >= 0.0 and iv.ci_high <= 1.0
    assert block_bootstrap(values, 2).ci_low < 0.0  # unclipped, the widened band crosses 0
