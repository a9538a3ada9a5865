"""Typed writes to a recorded order: a status change is built only along the state table, at a
UTC time, with typed facts; whether it settles the order out of the open index follows one rule."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import (
    IllegalTransitionError,
    Intent,
    OrderIntent,
    OrderStatus,
)
from cryptosmarttrader.domain.types import DomainError, Price, Quantity, Side, Symbol

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
S = OrderStatus


def _order(status: OrderStatus = S.NEW) -> Order:
    intent = OrderIntent(
        "s", Symbol("ETH/USDT"), Side.BUY, Intent.OPEN, 1_709_251_200_000, Quantity.of("2"),
        Price.of("50"),
    )  # fmt: skip
    order = Order.new(intent, created_at=T0, mode="paper")
    return order if status is S.NEW else order.moved_to(S.SUBMITTED).moved_to(status)


def test_an_order_moves_from_its_own_status_along_the_table() -> None:
    # Given an accepted order
    order = _order(S.ACCEPTED)
    # When it is moved to PARTIALLY_FILLED with the venue's fill
    facts = OrderFacts(filled=Decimal("0.5"), average_price=Price.of("51"))
    change = order.move(S.PARTIALLY_FILLED, at=T0, facts=facts)
    # Then the change expects the order's status and carries the facts
    assert (change.expected, change.new, change.at, change.facts) == (
        S.ACCEPTED,
        S.PARTIALLY_FILLED,
        T0,
        facts,
    )
    # and a move off the table cannot be built, from the order or from a stored status
    with pytest.raises(IllegalTransitionError):
        order.move(S.SUBMITTED, at=T0)
    with pytest.raises(IllegalTransitionError):
        StatusChange(S.FILLED, S.CANCELED, T0)


def test_a_change_needs_a_utc_time() -> None:
    with pytest.raises(DomainError, match="UTC-aware"):
        StatusChange(S.NEW, S.SUBMITTED, datetime(2024, 3, 1, 12, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("expected", "new", "facts", "settle", "settles"),
    [
        (S.NEW, S.CANCELED, OrderFacts(cancel_reason="kill-switch on"), None, True),
        (S.SUBMITTED, S.EXPIRED, OrderFacts(filled=Decimal(0)), None, True),
        (S.SUBMITTED, S.FILLED, OrderFacts(filled=Decimal("2")), None, False),
        (S.CANCEL_PENDING, S.CANCELED, OrderFacts(filled=Decimal("0.1")), None, False),
        (S.NEW, S.SUBMITTED, OrderFacts(), None, False),
        (S.SUBMITTED, S.REJECTED, OrderFacts(), False, False),
        (S.SUBMITTED, S.FILLED, OrderFacts(filled=Decimal("2")), True, True),
    ],
)
def test_a_terminal_move_without_a_fill_settles_by_default(
    expected: OrderStatus, new: OrderStatus, facts: OrderFacts, settle: bool | None, settles: bool
) -> None:
    assert StatusChange(expected, new, T0, facts, settle).settles is settles


def test_only_a_terminal_move_may_be_told_to_settle() -> None:
    with pytest.raises(DomainError, match="only a terminal order"):
        StatusChange(S.NEW, S.SUBMITTED, T0, settle=True)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"filled": Decimal(-1)}, "filled must be"),
        ({"fee": Decimal("NaN")}, "fee must be"),
        ({"submitted_at": datetime(2024, 3, 1)}, "submitted_at must be UTC-aware"),  # noqa: DTZ001
        ({"filled_at": datetime(2024, 3, 1)}, "filled_at must be UTC-aware"),  # noqa: DTZ001
        ({"absent_lookups": 0}, "absent_lookups"),
        ({"exchange_order_id": ""}, "exchange order id"),
    ],
)
def test_facts_refuse_what_no_order_can_carry(facts: dict[str, object], message: str) -> None:
    with pytest.raises(DomainError, match=message):
        OrderFacts(**facts)  # type: ignore[arg-type]


def test_facts_say_whether_they_hold_anything_and_whether_they_fill() -> None:
    assert OrderFacts().empty and not OrderFacts().fills
    assert not OrderFacts(mode="paper").empty
    assert not OrderFacts(filled=Decimal(0)).fills
    assert OrderFacts(filled=Decimal("0.1")).fills
