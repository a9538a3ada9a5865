"""Balance reconciliation: the venue account against the positions ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.balances import (
    BalanceTolerance,
    Disagreement,
    reconcile_balances,
)
from cryptosmarttrader.domain.risk import RiskLevel, RiskObservation, RiskState, step
from cryptosmarttrader.domain.types import DomainError

CASH = Decimal("1000")
MARKS = {"BTC": Decimal("30000"), "ETH": Decimal("2000"), "DOGE": Decimal("0.07")}


def check(
    venue: dict[str, Decimal], ledger: dict[str, Decimal], cash: Decimal | None = CASH, **kw: object
):
    return reconcile_balances(venue, ledger, quote="USDT", marks=MARKS, ledger_cash=cash, **kw)  # type: ignore[arg-type]


def test_books_that_agree_within_commission_rounding_and_dust_have_no_disagreement() -> None:
    result = check(
        {
            "BTC": Decimal("0.0999"),
            "ETH": Decimal("1.5"),
            "USDT": Decimal("1000.2"),
            "DOGE": Decimal("3"),
        },
        {"BTC": Decimal("0.1"), "ETH": Decimal("1.5")},
    )
    # 0.0001 BTC short is 0.1% of the position; 3 DOGE are worth 0.21 USDT (dust)
    assert result.disagreements == ()
    assert result.drift_reason is None
    assert result.checked == ("BTC", "DOGE", "ETH", "USDT")


def test_a_coin_missing_from_the_account_is_drift_with_its_value() -> None:
    result = check({"BTC": Decimal("0.05"), "USDT": Decimal("1000")}, {"BTC": Decimal("0.1")})
    (drift,) = result.drifts
    assert drift.asset == "BTC" and drift.kind is Disagreement.DRIFT
    assert drift.value == Decimal("1500")
    assert result.drift_reason == (
        "balance drift: BTC: the venue holds 0.05, the ledger 0.1; 0.05 missing (worth 1500.00)"
    )


def test_a_position_opened_outside_the_system_is_external_never_drift() -> None:
    result = check(
        {"ETH": Decimal("2"), "BTC": Decimal("0.1"), "USDT": Decimal("5000")},
        {"BTC": Decimal("0.1")},
    )
    assert result.drift_reason is None
    (external,) = result.external
    assert external.asset == "ETH" and external.ledger == 0 and external.venue == Decimal("2")
    assert "held outside the system, never traded" in external.describe()


def test_cash_below_the_ledgers_cash_is_drift_surplus_cash_is_not() -> None:
    short = check({"USDT": Decimal("400")}, {}, cash=Decimal("1000"))
    assert [d.asset for d in short.drifts] == ["USDT"]
    assert short.drifts[0].value == Decimal("600")
    assert check({"USDT": Decimal("90000")}, {}, cash=Decimal("1000")).disagreements == ()
    assert check({"USDT": Decimal("0")}, {}, cash=None).disagreements == ()


def test_a_coin_whose_ledger_holding_cannot_be_read_is_not_judged_and_the_cash_still_is() -> None:
    # Given the ledger's ETH position record unreadable (left out of the ledger's holdings)
    # and the venue holding ETH, while the cash is short
    result = check(
        {"ETH": Decimal("2"), "BTC": Decimal("0.1"), "USDT": Decimal("400")},
        {"BTC": Decimal("0.1")},
        unknown={"ETH"},
    )
    # Then ETH is neither a holding outside the system nor a drift: it is not judged
    assert result.external == ()
    assert "ETH" in result.skipped and "ETH" not in result.checked
    # while the other coins and the cash are judged as ever
    assert [d.asset for d in result.drifts] == ["USDT"]
    assert {"BTC", "USDT"} <= set(result.checked)


def test_assets_with_an_order_in_flight_are_not_judged_this_cycle() -> None:
    # a buy of BTC filled between the ledger read and the balance read
    result = check(
        {"BTC": Decimal("0.2"), "USDT": Decimal("0")}, {"BTC": Decimal("0.1")}, in_flight={"BTC"}
    )
    assert result.disagreements == ()
    assert result.skipped == ("BTC",) and "USDT" not in result.checked


def test_a_coin_without_a_mark_missing_beyond_the_relative_tolerance_is_drift() -> None:
    result = check({"XYZ": Decimal("5"), "USDT": Decimal("1000")}, {"XYZ": Decimal("10")})
    assert [(d.asset, d.value) for d in result.drifts] == [("XYZ", None)]


def test_negative_or_non_finite_balances_are_refused() -> None:
    with pytest.raises(DomainError, match="venue balance of BTC"):
        check({"BTC": Decimal("-1")}, {})
    with pytest.raises(DomainError, match="ledger quantity of ETH"):
        check({}, {"ETH": Decimal("NaN")})
    with pytest.raises(DomainError, match="relative"):
        BalanceTolerance(relative=Decimal("-0.1"))


def test_balance_drift_moves_the_risk_guard_to_defensive_with_the_reason() -> None:
    now = datetime(2024, 3, 1, 10, tzinfo=UTC)
    state = RiskState.initial(now)
    drift = check(
        {"BTC": Decimal("0.05"), "USDT": Decimal("1000")}, {"BTC": Decimal("0.1")}
    ).drift_reason
    moved, transition = step(state, RiskObservation(Decimal("4000"), balance_drift=drift), now)
    assert moved.level is RiskLevel.DEFENSIVE
    assert transition is not None and transition.reason == drift
    # books that agree demand nothing
    calm, none = step(state, RiskObservation(Decimal("4000"), balance_drift=None), now)
    assert calm.level is RiskLevel.NORMAL and none is None


def test_a_commission_asset_the_ledger_holds_and_an_unstated_balance_are_not_judged() -> None:
    # fees paid in BNB lower its balance with every trade of any coin: never a drift
    result = check(
        {"BNB": Decimal("1.98"), "BTC": None, "USDT": Decimal("1000")},
        {"BNB": Decimal("2"), "BTC": Decimal("0.1")},
        commission_assets={"BNB"},
    )
    assert result.disagreements == ()
    assert result.skipped == ("BNB", "BTC")
    assert "USDT" in result.checked  # the cash is still judged


def test_an_unstated_cash_balance_is_not_judged() -> None:
    assert check({"USDT": None}, {}).disagreements == ()
