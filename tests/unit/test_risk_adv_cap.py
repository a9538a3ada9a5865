"""The RiskGuard's ADV cap: a position never exceeds a fraction of the coin's 30-day average
daily volume, whatever the equity allows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.portfolio import PortfolioExposure
from cryptosmarttrader.domain.risk import MarketQuote, RiskGuard, RiskLevel, RiskLimits
from cryptosmarttrader.domain.types import DomainError, Money, Price, Quantity, Side, Symbol

NOW = datetime(2022, 6, 1, 12, 0, tzinfo=UTC)
GUARD = RiskGuard(RiskLimits(max_adv_fraction=Decimal("0.02")))


def _eval(qty: str, quote: MarketQuote, held: str = "0"):  # type: ignore[no-untyped-def]
    intent = OrderIntent(
        "s", Symbol("TINY/USDT"), Side.BUY, Intent.OPEN, 1, Quantity.of(qty), Price.of("1")
    )
    exposure = PortfolioExposure({"TINY/USDT": Decimal(held)} if held != "0" else {})
    return GUARD.evaluate(
        intent, equity=Money(Decimal("100000")), level=RiskLevel.NORMAL, kill_switch_on=False,
        kill_switch_reason="", exposure=exposure, quote=quote, now=NOW,
    )  # fmt: skip


def test_entry_is_cut_to_the_adv_room_left() -> None:
    # Given a coin trading $50k a day on average (2 % = $1,000), plenty of 24 h volume
    quote = MarketQuote(NOW, Decimal("10000000"), adv_30d_quote=Decimal("50000"))
    v = _eval("1500", quote)
    assert (v.approved, v.rule, v.quantity) == (True, "max_adv_fraction", Quantity.of("1000"))
    # with $800 already held only $200 is left
    assert _eval("1500", quote, held="800").quantity == Quantity.of("200")
    assert _eval("10", quote, held="1000").approved is False


def test_unknown_adv_rejects_when_the_cap_is_on() -> None:
    v = _eval("10", MarketQuote(NOW, Decimal("10000000")))
    assert (v.approved, v.rule) == (False, "max_adv_fraction")


def test_the_cap_is_off_by_default_and_validated() -> None:
    assert RiskLimits().max_adv_fraction is None
    with pytest.raises(DomainError):
        RiskLimits(max_adv_fraction=Decimal("1.5"))
