from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.risk import (
    RiskGuard,
    RiskLevel,
    RiskLimits,
    size_for_fraction,
)
from cryptosmarttrader.domain.types import DomainError, Money, Price, Quantity, Side, Symbol

EQUITY = Money(Decimal("100000"))


def _intent(qty: str, price: str = "100", side: Side = Side.BUY) -> OrderIntent:
    return OrderIntent(
        "s", Symbol("bitcoin"), side, Intent.OPEN, 1, Quantity.of(qty), Price.of(price)
    )


def _check(intent: OrderIntent, **kw: object) -> object:
    args: dict[str, object] = {
        "equity": EQUITY,
        "asset_exposure": Decimal(0),
        "level": RiskLevel.NORMAL,
        "kill_switch_on": False,
    }
    args.update(kw)
    return RiskGuard().check(intent, **args)  # type: ignore[arg-type]


def test_sizing_is_two_percent_of_equity_rounded_down() -> None:
    qty = size_for_fraction(EQUITY, Decimal("0.02"), Decimal("3"))
    assert qty is not None
    assert qty.value == Decimal("666.66666666")
    assert qty.value * 3 <= Decimal("2000")


def test_order_within_cap_is_approved() -> None:
    v = _check(_intent("20"))  # 2,000 notional = exactly 2%
    assert v.approved and v.rule == "ok"  # type: ignore[attr-defined]


def test_order_over_cap_is_reduced_to_room() -> None:
    v = _check(_intent("20"), asset_exposure=Decimal("1500"))
    assert v.approved and v.rule == "max_asset_fraction"  # type: ignore[attr-defined]
    assert v.quantity.value == Decimal("5")  # type: ignore[attr-defined]


def test_order_at_cap_is_rejected_naming_the_rule() -> None:
    v = _check(_intent("1"), asset_exposure=Decimal("2000"))
    assert not v.approved and v.rule == "max_asset_fraction"  # type: ignore[attr-defined]


def test_kill_switch_rejects_everything_even_exits() -> None:
    for side in Side:
        v = _check(_intent("1", side=side), kill_switch_on=True, kill_switch_reason="drill")
        assert not v.approved and v.rule == "kill_switch"  # type: ignore[attr-defined]
        assert "drill" in v.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("level", [RiskLevel.DEFENSIVE, RiskLevel.EMERGENCY])
def test_defensive_levels_block_entries_but_allow_exits(level: RiskLevel) -> None:
    assert not _check(_intent("1"), level=level).approved  # type: ignore[attr-defined]
    assert _check(_intent("1", side=Side.SELL), level=level).approved  # type: ignore[attr-defined]


def test_shutdown_blocks_exits_too() -> None:
    assert not _check(_intent("1", side=Side.SELL), level=RiskLevel.SHUTDOWN).approved  # type: ignore[attr-defined]


def test_conservative_halves_the_cap() -> None:
    v = _check(_intent("20"), level=RiskLevel.CONSERVATIVE)
    assert v.quantity.value == Decimal("10")  # type: ignore[attr-defined]


@pytest.mark.parametrize("equity", [None, Money(Decimal(0)), Money(Decimal(-5))])
def test_missing_or_non_positive_equity_rejects(equity: Money | None) -> None:
    v = _check(_intent("1"), equity=equity)
    assert not v.approved and v.rule == "equity"  # type: ignore[attr-defined]


def test_limits_validate() -> None:
    with pytest.raises(DomainError):
        RiskLimits(Decimal("0"))
    with pytest.raises(DomainError):
        RiskLimits(Decimal("1.5"))
