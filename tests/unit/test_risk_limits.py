"""RiskGuard.evaluate: every portfolio limit names its rule; no approval ever exceeds a cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosmarttrader.domain.orders import Holding, Intent, OrderIntent
from cryptosmarttrader.domain.portfolio import PortfolioExposure
from cryptosmarttrader.domain.risk import (
    MarketQuote,
    RiskGuard,
    RiskLevel,
    RiskLimits,
    RiskVerdict,
)
from cryptosmarttrader.domain.types import Money, Price, Quantity, Side, Symbol

NOW = datetime(2022, 6, 1, 12, 0, tzinfo=UTC)
EQUITY = Money(Decimal("100000"))
QUOTE = MarketQuote(NOW - timedelta(minutes=1), Decimal("50000000"))


def _intent(
    qty: str, price: str = "100", side: Side = Side.BUY, sym: str = "ETH/USDT"
) -> OrderIntent:
    return OrderIntent("s", Symbol(sym), side, Intent.OPEN, 1, Quantity.of(qty), Price.of(price))


def _eval(
    intent: OrderIntent,
    exposure: PortfolioExposure | None = None,
    quote: MarketQuote | None = QUOTE,
    level: RiskLevel = RiskLevel.NORMAL,
    equity: Money | None = EQUITY,
) -> RiskVerdict:
    return RiskGuard().evaluate(
        intent,
        equity=equity,
        level=level,
        kill_switch_on=False,
        kill_switch_reason="",
        exposure=exposure or PortfolioExposure({}),
        quote=quote,
        now=NOW,
    )


def test_cluster_cap_binds_when_a_correlated_asset_is_held() -> None:
    # Given BTC and ETH in one cluster with 4,000 of BTC held (cluster cap 5 % = 5,000)
    exposure = PortfolioExposure(
        {"BTC/USDT": Decimal("4000")}, {"BTC/USDT": "BTC/USDT", "ETH/USDT": "BTC/USDT"}
    )
    # When a 2,000 ETH entry is evaluated
    v = _eval(_intent("20"), exposure)
    # Then it is reduced to the 1,000 room of the cluster, naming the cluster rule
    assert (v.approved, v.rule) == (True, "max_cluster_fraction")
    assert v.quantity == Quantity.of("10")


def test_gross_exposure_cap_rejects_when_full() -> None:
    held = {f"C{i}/USDT": Decimal("2000") for i in range(10)}  # 20,000 = the 20 % gross cap
    v = _eval(
        _intent("1"),
        PortfolioExposure(held),
    )
    # the open-position count (10) is hit first for a new symbol
    assert (v.approved, v.rule) == (False, "max_open_positions")
    held9 = {f"C{i}/USDT": Decimal("2222") for i in range(9)}  # 19,998 gross
    v = _eval(_intent("1"), PortfolioExposure(held9))
    assert (v.approved, v.rule) == (True, "max_gross_fraction")
    assert v.quantity == Quantity.of("0.02")


def test_liquidity_caps_notional_at_one_percent_of_24h_volume() -> None:
    thin = MarketQuote(NOW, Decimal("150000"))  # 1 % = 1,500
    v = _eval(_intent("20"), quote=thin)
    assert (v.approved, v.rule, v.quantity) == (True, "liquidity", Quantity.of("15"))
    no_volume = MarketQuote(NOW, None)
    assert _eval(_intent("1"), quote=no_volume).rule == "liquidity"


@pytest.mark.parametrize(
    ("quote", "rule"),
    [
        (None, "market_data"),
        (MarketQuote(NOW - timedelta(minutes=16), Decimal("1e9")), "stale_quote"),
        (MarketQuote(NOW + timedelta(minutes=1), Decimal("1e9")), "stale_quote"),
    ],
)
def test_unknown_symbol_or_stale_quote_rejects(quote: MarketQuote | None, rule: str) -> None:
    v = _eval(_intent("1"), quote=quote)
    assert (v.approved, v.rule) == (False, rule)


def test_missing_equity_rejects_entries() -> None:
    assert _eval(_intent("1"), equity=None).rule == "equity"


def _sell(qty: str, holding: Holding | None, level: RiskLevel = RiskLevel.NORMAL) -> RiskVerdict:
    return RiskGuard().evaluate(
        _intent(qty, side=Side.SELL),
        equity=EQUITY,
        level=level,
        kill_switch_on=False,
        kill_switch_reason="",
        exposure=PortfolioExposure({"ETH/USDT": Decimal("100")}),
        quote=QUOTE,
        now=NOW,
        holding=holding,
    )


def test_sell_without_a_position_is_rejected_and_with_one_is_allowed_at_emergency() -> None:
    assert _sell("1", Holding(Decimal(0))).rule == "no_position"
    # notional held is not enough: without the holding the sell cannot be capped, so refused
    assert _sell("1", None).rule == "no_position"
    v = _sell("1", Holding(Decimal("1")), level=RiskLevel.EMERGENCY)
    assert v.approved and v.rule == "ok"
    assert _sell("1", Holding(Decimal("1")), level=RiskLevel.SHUTDOWN).rule == "risk_level"


def test_sells_are_capped_at_held_minus_open_sells() -> None:
    # Given 5 held with 3 already being sold
    holding = Holding(Decimal("5"), Decimal("3"))
    # When a close of all 5 is evaluated, Then it is reduced to the 2 left, naming the rule
    v = _sell("5", holding)
    assert (v.approved, v.rule, v.quantity) == (True, "sell_cap", Quantity.of("2"))
    # and once everything held is being sold, another sell is refused
    refused = _sell("1", Holding(Decimal("5"), Decimal("5")))
    assert (refused.approved, refused.rule) == (False, "sell_cap")
    assert "already being sold" in refused.reason


@settings(max_examples=200, deadline=None)
@given(
    held=st.decimals(min_value=0, max_value=1000, places=4),
    open_sells=st.decimals(min_value=0, max_value=1000, places=4),
    qty=st.decimals(min_value="0.0001", max_value=1000, places=4),
)
def test_no_approved_sell_exceeds_what_is_left_to_sell(
    held: Decimal, open_sells: Decimal, qty: Decimal
) -> None:
    v = _sell(str(qty), Holding(held, open_sells))
    if v.approved:
        assert v.quantity is not None
        assert 0 < v.quantity.value <= held - open_sells


# --------------------------------------------------------------------------- property

_money = st.decimals(min_value=0, max_value=50_000, places=2)


@settings(max_examples=400, deadline=None)
@given(
    qty=st.decimals(min_value=Decimal("0.00000001"), max_value=10_000, places=8),
    price=st.decimals(min_value=Decimal("0.0001"), max_value=100_000, places=4),
    equity=st.decimals(min_value=1, max_value=10_000_000, places=2),
    own=_money,
    other=_money,
    same_cluster=st.booleans(),
    volume=st.decimals(min_value=1, max_value=10**10, places=0),
    level=st.sampled_from(list(RiskLevel)),
)
def test_property_no_approved_entry_exceeds_any_cap(
    qty: Decimal,
    price: Decimal,
    equity: Decimal,
    own: Decimal,
    other: Decimal,
    same_cluster: bool,
    volume: Decimal,
    level: RiskLevel,
) -> None:
    clusters = {"ETH/USDT": "X", "BTC/USDT": "X" if same_cluster else "BTC/USDT"}
    exposure = PortfolioExposure({"ETH/USDT": own, "BTC/USDT": other}, clusters)
    v = _eval(
        _intent(str(qty), str(price)),
        exposure,
        quote=MarketQuote(NOW, volume),
        level=level,
        equity=Money(equity),
    )
    if not v.approved:
        assert v.rule != "ok" and v.reason
        return
    assert v.quantity is not None and v.quantity.value <= qty
    notional = v.quantity.value * price
    lim = RiskLimits()
    mult = {RiskLevel.NORMAL: 1, RiskLevel.CONSERVATIVE: Decimal("0.5")}[level]
    assert own + notional <= equity * lim.max_asset_fraction * mult
    cluster_held = own + (other if same_cluster else 0)
    assert cluster_held + notional <= equity * lim.max_cluster_fraction * mult
    assert own + other + notional <= equity * lim.max_gross_fraction * mult
    assert notional <= volume * lim.max_volume_fraction


def test_a_coin_whose_book_cannot_be_read_is_counted_at_a_full_asset_cap() -> None:
    # Given 8 coins held at 2,222 (17,776 of the 20 % gross cap) and a ninth coin whose stored
    # record cannot be read (its exposure unknown, read as nothing)
    held = {f"C{i}/USDT": Decimal("2222") for i in range(8)}
    blind = PortfolioExposure(held, unknown=frozenset({"DAMAGED/USDT"}))
    # When a 2,000 ETH entry is evaluated
    v = _eval(_intent("20"), blind)
    # Then the unknown coin takes a full per-asset cap (2,000) of the gross room: 224 is left
    assert (v.approved, v.rule) == (True, "max_gross_fraction")
    assert v.quantity == Quantity.of("2.24")
    # and a ninth coin beside it counts as an open position too: the tenth is the last allowed
    nine = PortfolioExposure(
        {f"C{i}/USDT": Decimal("100") for i in range(9)}, unknown=frozenset({"DAMAGED/USDT"})
    )
    assert _eval(_intent("1"), nine).rule == "max_open_positions"
    # while the same book without the unknown coin leaves the entry its full 2,000
    assert _eval(_intent("20"), PortfolioExposure(held)).quantity == Quantity.of("20")
