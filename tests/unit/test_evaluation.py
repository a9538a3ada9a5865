"""Evaluation math on tiny inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from cryptosmarttrader.domain.evaluation import (
    auc,
    base_rate,
    brier,
    calibration_curve,
    ece,
    forward_gain_labels,
    hit_rate_by_decile,
    label_column,
    lift,
    portfolio_stats,
    precision_at_k,
    purged_train_mask,
    simulate_portfolio,
    walk_forward_folds,
)
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.types import DomainError

T0 = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS


def _series(symbol: str, closes: list[float], days: list[int] | None = None) -> pl.DataFrame:
    days = days if days is not None else list(range(len(closes)))
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [T0 + d * DAY_MS for d in days],
            "close": closes,
            "volume": [1.0] * n,
            "market_cap": [1.0] * n,
        },
        schema=DAILY_SCHEMA,
    )


def test_label_is_max_forward_close_within_horizon_and_null_without_the_full_horizon() -> None:
    # Given closes 1, 2, 6, 3, 1 and a 2-day horizon
    labels = forward_gain_labels(_series("x", [1.0, 2.0, 6.0, 3.0, 1.0]), 2, [1.0, 5.0])
    # Then gain(t) = max(close[t+1..t+2]) / close[t] - 1 where t+2 is observed, else null
    assert labels["fwd_gain"].to_list() == [5.0, 2.0, -0.5, None, None]
    assert labels[label_column(1.0)].to_list() == [1, 1, 0, None, None]
    assert labels[label_column(5.0)].to_list() == [1, 0, 0, None, None]
    assert labels["label_end_day"][0] - labels["day"][0] == 2


def test_label_window_is_calendar_days_across_gaps() -> None:
    # Given a 3-day hole: the close 4 days later is outside a 2-day horizon
    labels = forward_gain_labels(_series("x", [1.0, 1.5, 9.0], days=[0, 1, 5]), 2, [1.0])
    assert labels["fwd_gain"].to_list()[0] == pytest.approx(0.5)


def test_purge_and_embargo_drop_overlapping_labels() -> None:
    days = np.array([0, 5, 10, 15], dtype=np.int64)
    ends = days + 10
    # Test block starts on day 22; embargo 3: a label ending on day 20 is too close (20 + 3 >= 22)
    mask = purged_train_mask(days, ends, 22, 3)
    assert mask.tolist() == [True, True, False, False]


def test_walk_forward_folds_cover_the_span_in_order() -> None:
    folds = walk_forward_folds(100, 129, 10)
    assert [(f.test_start_day, f.test_end_day) for f in folds] == [
        (100, 109),
        (110, 119),
        (120, 129),
    ]


def test_auc_known_values() -> None:
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1.0])) == pytest.approx(0.75)
    assert auc(np.array([0.5, 0.5]), np.array([0, 1.0])) == pytest.approx(0.5)
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1.0, 1.0])))


def test_brier_and_ece_known_values() -> None:
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.95])
    y = np.array([0, 0, 0, 1, 1.0])
    assert brier(p, y) == pytest.approx((3 * 0.0625 + 0.5625 + 0.0025) / 5)
    # bin 2: mean p 0.25, hit rate 0.25 → gap 0; bin 9: 0.95 vs 1 → gap 0.05 weighted 1/5
    assert ece(p, y) == pytest.approx(0.01)
    curve = calibration_curve(p, y)
    assert curve["n"].to_list() == [4, 1]


def test_precision_at_k_base_rate_and_lift() -> None:
    # Given two dates with four coins each, k = 2
    frame = pl.DataFrame(
        {
            "day": [1, 1, 1, 1, 2, 2, 2, 2],
            "score": [0.9, 0.8, 0.1, 0.2, 0.9, 0.8, 0.7, 0.1],
            "hit": [1, 0, 0, 0, 1, 1, 0, 1],
        }
    )
    p = precision_at_k(frame, "score", "hit", 2)
    b = base_rate(frame, "hit")
    # Then precision = mean(1/2, 2/2) and the base rate = mean(1/4, 3/4)
    assert p == pytest.approx(0.75)
    assert b == pytest.approx(0.5)
    assert lift(p, b) == pytest.approx(1.5)


def test_hit_rate_by_decile_puts_top_scores_in_decile_10() -> None:
    frame = pl.DataFrame({"day": [1] * 10, "score": list(range(10)), "hit": [0] * 9 + [1]})
    table = hit_rate_by_decile(frame, "score", "hit")
    assert table["decile"].to_list() == list(range(1, 11))
    assert table.filter(pl.col("decile") == 10)["hit_rate"][0] == 1.0


def test_portfolio_pays_costs_on_turnover_and_drifts_with_prices() -> None:
    # Given two assets, one doubling on day 1, rebalanced 50/50 on day 0 only, 1% cost
    prices = np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 1.0]])
    sim = simulate_portfolio(prices, np.array([0]), np.array([[0.5, 0.5]]), 0.01)
    # Then day 0 pays 1% on 100% traded, and the book is then worth 0.99 * (1 + 0.5)
    assert sim.equity.tolist() == pytest.approx([0.99, 1.485, 1.485])
    assert sim.turnover == pytest.approx(1.0) and sim.costs == pytest.approx(0.01)


def test_portfolio_rebalance_and_missing_day_marked_at_last_close() -> None:
    prices = np.array([[1.0, 1.0], [np.nan, 2.0], [2.0, 2.0], [4.0, 2.0]])
    sim = simulate_portfolio(prices, np.array([0, 2]), np.array([[1.0, 0.0], [0.0, 1.0]]), 0.0)
    # Day 1 has no price for asset 0: marked at 1.0; day 2 it doubled → all into asset 1
    assert sim.equity.tolist() == pytest.approx([1.0, 1.0, 2.0, 2.0])
    assert sim.turnover == pytest.approx(1.0 + 2.0)


def test_portfolio_refuses_weights_on_assets_without_price() -> None:
    prices = np.array([[1.0, np.nan], [1.0, 1.0]])
    with pytest.raises(DomainError, match="without a price"):
        simulate_portfolio(prices, np.array([0]), np.array([[0.0, 1.0]]), 0.0)


def test_portfolio_stats_known_values() -> None:
    equity = np.array([1.0, 2.0, 1.0, 1.5])
    stats = portfolio_stats(equity)
    assert stats.total_return == pytest.approx(0.5)
    assert stats.max_drawdown == pytest.approx(-0.5)
    daily = np.array([1.0, -0.5, 0.5])
    assert stats.sharpe == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(365))
