"""Volume-scaled costs, the ADV cap and the sleeve book on hand-made paths."""

from __future__ import annotations

import numpy as np
import pytest

from cryptosmarttrader.domain.trade_book import Cohort, CostModel, simulate_book

COSTS = CostModel(fee_bps=10, spread_ref_bps=5, ref_adv_usd=1e8, spread_max_bps=300,
                  impact_bps=100, max_adv_fraction=0.02)  # fmt: skip


def test_costs_grow_as_volume_shrinks_and_with_size() -> None:
    big, small = COSTS.rate(np.asarray([1e4, 1e4]), np.asarray([1e8, 1e6]))
    # $100M a day: fee 10 + half-spread 5 + impact 100*sqrt(1e-4)=1 → 16 bps
    assert big == pytest.approx(16e-4)
    # $1M a day: spread 5*sqrt(100)=50, impact 100*sqrt(0.01)=10 → 70 bps
    assert small == pytest.approx(70e-4)
    # unknown volume: the widest spread and full impact
    assert COSTS.rate(np.asarray([1.0]), np.asarray([np.nan]))[0] == pytest.approx(410e-4)


def test_positions_are_capped_at_a_fraction_of_adv() -> None:
    assert COSTS.cap(np.asarray([1e6, np.nan])).tolist() == [20_000.0, 0.0]


def test_sleeves_hold_each_cohort_through_its_exits() -> None:
    # Given 2 sleeves (max 4 days, rebalance every 2), one pick per cohort doubling then exiting
    path = np.asarray([[1.0, 1.5, 2.0, 2.0, 2.0]])
    cohorts = [
        Cohort(0, path, np.asarray([2]), np.asarray([1e12])),
        Cohort(2, path, np.asarray([2]), np.asarray([1e12])),
    ]
    free = CostModel(fee_bps=0, spread_ref_bps=0, spread_max_bps=0, impact_bps=0)
    res = simulate_book(7, cohorts, rebalance_days=2, max_days=4, equity_usd=100.0, costs=free)
    # Then each sleeve (50) doubles: 100 → 150 → 200
    assert res.equity.tolist() == pytest.approx([100, 125, 150, 175, 200, 200, 200])
    assert res.positions == 2 and res.capped_positions == 0


def test_the_adv_cap_leaves_cash_and_is_counted() -> None:
    path = np.asarray([[1.0, 2.0, 2.0]])
    res = simulate_book(
        3, [Cohort(0, path, np.asarray([1]), np.asarray([1000.0]))],
        rebalance_days=2, max_days=2, equity_usd=100.0,
        costs=CostModel(fee_bps=0, spread_ref_bps=0, spread_max_bps=0, impact_bps=0),
    )  # fmt: skip
    # the sleeve holds 100 but the coin allows 2 % of $1,000 = $20: +20 only
    assert res.equity[-1] == pytest.approx(120.0)
    assert res.capped_positions == 1 and res.cash_left_by_cap_usd == pytest.approx(80.0)


def test_a_member_held_at_a_total_loss_takes_its_full_slot() -> None:
    # Given the lower-bound book: one live coin flat, one dead member (infinite ADV: no cap)
    paths = np.asarray([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    res = simulate_book(
        3, [Cohort(0, paths, np.asarray([2, 1]), np.asarray([1e12, np.inf]))],
        rebalance_days=2, max_days=2, equity_usd=100.0,
        costs=CostModel(fee_bps=0, spread_ref_bps=0, spread_max_bps=0, impact_bps=0),
    )  # fmt: skip
    # Then half the sleeve is lost, none of it kept in cash by the cap
    assert res.equity[-1] == pytest.approx(50.0)
    assert res.capped_positions == 0
