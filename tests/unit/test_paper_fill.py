"""Paper fill model on real Binance bars: costs grow with size, fills stay inside the bar."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.paper_fill import (
    BacktestCosts,
    Bar,
    Fill,
    FillModel,
    FillRejected,
    backtest_fills,
    simulate_fill,
)
from cryptosmarttrader.domain.types import DomainError, Quantity, Side

MODEL = FillModel()


@pytest.fixture(scope="module")
def btc_bars(data_dir: Path) -> pl.DataFrame:
    market = RecordedMarketData(data_dir)
    return market.ohlcv(
        "BTC/USDT", "1h", datetime(2022, 5, 9, tzinfo=UTC), datetime(2022, 5, 12, tzinfo=UTC)
    )


def _bar(row: dict[str, float]) -> Bar:
    return Bar.of(int(row["ts"]), row["open"], row["high"], row["low"], row["close"], row["volume"])


@pytest.mark.realdata
def test_buy_pays_spread_and_impact_sell_receives_less(btc_bars: pl.DataFrame) -> None:
    # Given a real BTC/USDT hour bar of the May 2022 sell-off
    bar = _bar(btc_bars.row(10, named=True))
    qty = Quantity.of("0.05")
    # When buying and selling the same size
    buy = simulate_fill(Side.BUY, qty, bar, MODEL)
    sell = simulate_fill(Side.SELL, qty, bar, MODEL)
    assert isinstance(buy, Fill) and isinstance(sell, Fill)
    # Then the buy pays above the open, the sell receives below it, symmetric, at least 2 bps
    assert sell.price.value < bar.open.value < buy.price.value
    assert buy.cost_bps == sell.cost_bps >= Decimal(2)
    # And the fee is 10 bps of the fill notional
    assert buy.fee.amount == (buy.notional * Decimal("0.001")).quantize(Decimal("1e-8"))


@pytest.mark.realdata
def test_cost_grows_with_size_and_oversized_orders_are_rejected(btc_bars: pl.DataFrame) -> None:
    bar = _bar(btc_bars.row(20, named=True))
    costs = []
    for qty in ("0.01", "1", "50"):
        fill = simulate_fill(Side.BUY, Quantity.of(qty), bar, MODEL)
        assert isinstance(fill, Fill)
        costs.append(fill.cost_bps)
    assert costs == sorted(costs) and costs[0] < costs[-1]
    too_big = Quantity(bar.volume * Decimal("0.11"))
    rejected = simulate_fill(Side.BUY, too_big, bar, MODEL)
    assert isinstance(rejected, FillRejected) and "bar volume" in rejected.reason


@settings(max_examples=300, deadline=None)
@given(
    o=st.decimals(min_value=1, max_value=1000, places=2),
    spread=st.decimals(min_value=0, max_value=100, places=2),
    frac=st.decimals(min_value=0, max_value=1, places=3),
    vol=st.decimals(min_value=1, max_value=10**6, places=2),
    part=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.1"), places=4),
    side=st.sampled_from(list(Side)),
)
def test_property_fill_never_leaves_the_bar_range(
    o: Decimal, spread: Decimal, frac: Decimal, vol: Decimal, part: Decimal, side: Side
) -> None:
    low = o - spread * frac if o - spread * frac > 0 else o
    bar = Bar.of(1, str(o), str(o + spread), str(low), str(o), str(vol))
    fill = simulate_fill(side, Quantity(vol * part), bar, MODEL)
    assert isinstance(fill, Fill)
    assert bar.low.value <= fill.price.value <= bar.high.value


def test_bad_bars_and_models_are_refused() -> None:
    with pytest.raises(DomainError):
        Bar.of(1, "100", "99", "98", "100", "1")  # high below open
    with pytest.raises(DomainError):
        Bar.of(1, "100", "101", "99", "100", "-1")
    with pytest.raises(DomainError):
        FillModel(fee_rate=Decimal("-0.1"))
    zero = Bar.of(1, "100", "101", "99", "100", "0")
    assert isinstance(simulate_fill(Side.BUY, Quantity.of("1"), zero, MODEL), FillRejected)


@pytest.mark.realdata
def test_backtest_fills_take_the_next_open_with_fixed_slippage(btc_bars: pl.DataFrame) -> None:
    ts = btc_bars["ts"].to_list()
    orders = pl.DataFrame(
        {
            "symbol": ["BTC/USDT"] * 2,
            "decided_ms": [ts[3] - 1, ts[5]],
            "side": ["buy", "sell"],
            "quantity": [0.1, 0.1],
        }
    )
    out = backtest_fills(orders, btc_bars, BacktestCosts(slippage_bps=5))
    opens = btc_bars["open"].to_list()
    assert out["bar_ts"].to_list() == [ts[3], ts[5]]
    assert out["fill_price"].to_list() == pytest.approx([opens[3] * 1.0005, opens[5] * 0.9995])
