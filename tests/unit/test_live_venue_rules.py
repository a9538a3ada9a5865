"""Venue rules for real orders: sizing that only rounds down, testnets, and the live gate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptosmarttrader.domain.exchange import ExchangeId, Market
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.domain.venue import (
    SizedOrder,
    SizingRefusal,
    VenueMode,
    live_gate,
    sandbox_support,
    size_order,
)

# The LTC/USDT rules Binance publishes in exchangeInfo (tests/fixtures/exchanges/binance).
LTC = Market(
    exchange="binance",
    symbol=Symbol("LTC/USDT"),
    exchange_symbol="LTCUSDT",
    base="LTC",
    quote="USDT",
    active=True,
    spot=True,
    price_tick=Decimal("0.01"),
    amount_step=Decimal("0.001"),
    min_amount=Decimal("0.001"),
    min_cost=Decimal("5"),
    maker_fee=Decimal("0.001"),
    taker_fee=Decimal("0.001"),
)


def _size(qty: str, *, limit: str | None = None, ref: str = "70", side: Side = Side.BUY) -> object:
    return size_order(
        LTC,
        side,
        Quantity.of(qty),
        limit_price=None if limit is None else Price.of(limit),
        reference_price=Price.of(ref),
    )


def test_live_venue_amount_is_rounded_down_to_the_step_never_up() -> None:
    sized = _size("0.1239")
    assert isinstance(sized, SizedOrder)
    assert sized.quantity == Quantity.of("0.123")
    assert sized.notional == Decimal("0.123") * 70


def test_live_venue_limit_price_is_rounded_in_the_traders_favour() -> None:
    buy = _size("1", limit="70.019", side=Side.BUY)
    sell = _size("1", limit="70.011", side=Side.SELL)
    assert isinstance(buy, SizedOrder) and buy.price == Price.of("70.01")
    assert isinstance(sell, SizedOrder) and sell.price == Price.of("70.02")


@pytest.mark.parametrize(
    ("qty", "ref", "why"),
    [
        ("0.0009", "70", "rounds down to 0"),
        ("0.0719", "69", "below the minimum notional 5"),  # 0.071 × 69 = 4.899 after rounding
    ],
)
def test_live_venue_orders_below_the_minimums_are_refused_not_inflated(
    qty: str, ref: str, why: str
) -> None:
    refused = _size(qty, ref=ref)
    assert isinstance(refused, SizingRefusal)
    assert why in refused.reason


def test_live_venue_minimum_is_checked_after_rounding() -> None:
    # 0.0719 at 70 is 5.033 asked, but 0.071 × 70 = 4.97 is what could be sent
    refused = _size("0.0719", ref="70")
    assert isinstance(refused, SizingRefusal)
    assert "4.97" in refused.reason


def test_live_venue_inactive_market_is_refused() -> None:
    from dataclasses import replace

    refused = size_order(
        replace(LTC, active=False),
        Side.BUY,
        Quantity.of("1"),
        limit_price=None,
        reference_price=Price.of("70"),
    )
    assert isinstance(refused, SizingRefusal) and "not active" in refused.reason


def test_sandbox_support_says_where_there_is_none() -> None:
    assert sandbox_support(ExchangeId.BINANCE).available
    assert not sandbox_support("kraken").available
    assert not sandbox_support("kucoin").available
    assert VenueMode("paper") is VenueMode.PAPER


RUN = {"run_id": "r1", "status": "SUCCEEDED", "stage": "production"}
PATH = [
    {"at": "2026-01-01T00:00:00+00:00", "from_stage": "pending", "to_stage": "staging"},
    {"at": "2026-01-08T00:00:00+00:00", "from_stage": "staging", "to_stage": "canary"},
    {"at": "2026-01-11T00:00:00+00:00", "from_stage": "canary", "to_stage": "production"},
]
ACTIVE = {"run_id": "r1", "stage": "production"}


def test_live_venue_gate_opens_only_after_staging_and_canary_passed() -> None:
    assert live_gate("r1", RUN, PATH, ACTIVE).allowed


@pytest.mark.parametrize(
    ("run_id", "run", "path", "active", "why"),
    [
        (None, RUN, PATH, ACTIVE, "none was given"),
        ("r1", None, PATH, ACTIVE, "not recorded"),
        ("r1", {**RUN, "status": "RUNNING", "stage": "canary"}, PATH[:2], ACTIVE, "not passed"),
        ("r1", RUN, PATH[1:], ACTIVE, "did not go staging"),
        (
            "r1",
            RUN,
            [*PATH, {"at": "2026-01-12", "from_stage": "production", "to_stage": "rolled_back"}],
            ACTIVE,
            "rolled back",
        ),
        ("r1", RUN, PATH, {"run_id": "r2", "stage": "production"}, "not the active"),
    ],
)
def test_live_venue_gate_refuses_with_a_reason(
    run_id: str | None,
    run: dict[str, str] | None,
    path: list[dict[str, str]],
    active: dict[str, str],
    why: str,
) -> None:
    gate = live_gate(run_id, run, path, active)
    assert not gate.allowed
    assert why in gate.reason
