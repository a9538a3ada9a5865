"""The identity of a protective stop: derived from the position, walked like a close."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import (
    MAX_PROTECT_ATTEMPTS,
    OrderStatus,
    protective_attempt,
    protective_key,
    protective_list_ids,
    protective_order_id,
    resolve_protective,
)
from cryptosmarttrader.domain.types import DomainError, Symbol

BTC = Symbol("BTC/USDT")
EPISODE = "a" * 32


def _walk(statuses: dict[int, OrderStatus], qty: str = "0.02997") -> tuple[str, str, object]:
    ids = {
        protective_order_id(BTC, protective_key(EPISODE, Decimal(qty), n)).value: s
        for n, s in statuses.items()
    }
    found = resolve_protective(BTC, EPISODE, Decimal(qty), ids.get)
    assert found is not None
    key, coid, status = found
    return key, coid.value, status


def test_the_same_position_state_always_names_the_same_stop() -> None:
    key, coid, status = _walk({})
    assert key == f"{EPISODE}|0.02997#0" and status is None
    assert len(coid) == 32 and int(coid, 16) >= 0
    # the stored quantity's representation does not matter; the quantity does
    assert _walk({}, "0.029970")[1] == coid
    assert _walk({}, "0.03")[1] != coid
    assert protective_order_id(Symbol("ETH/USDT"), key).value != coid


def test_a_live_or_filled_stop_is_the_stop_a_cancelled_one_moves_to_the_next_attempt() -> None:
    assert _walk({0: OrderStatus.ACCEPTED})[2] is OrderStatus.ACCEPTED
    assert _walk({0: OrderStatus.SUBMITTED})[2] is OrderStatus.SUBMITTED
    assert _walk({0: OrderStatus.FILLED})[2] is OrderStatus.FILLED
    key, _, status = _walk({0: OrderStatus.CANCELED, 1: OrderStatus.EXPIRED})
    assert key.endswith("#2") and status is None


def test_a_stop_the_venue_refused_is_never_placed_again_for_that_position_state() -> None:
    ids = {protective_order_id(BTC, protective_key(EPISODE, Decimal(1), 0)).value:
           OrderStatus.REJECTED}  # fmt: skip
    assert resolve_protective(BTC, EPISODE, Decimal(1), ids.get) is None


def test_the_walk_is_bounded_and_the_key_checked() -> None:
    assert resolve_protective(BTC, EPISODE, Decimal(1), lambda _c: OrderStatus.CANCELED) is None
    assert MAX_PROTECT_ATTEMPTS == 16
    with pytest.raises(DomainError):
        protective_key(EPISODE, Decimal(0), 0)
    with pytest.raises(DomainError):
        protective_key(EPISODE, Decimal(1), -1)


def _leg(attempt: int, qty: str = "0.02997") -> str:
    return protective_list_ids(BTC, protective_key(EPISODE, Decimal(qty), attempt)).below.value


def _plain(attempt: int, qty: str = "0.02997") -> str:
    return protective_order_id(BTC, protective_key(EPISODE, Decimal(qty), attempt)).value


def test_a_live_list_stop_leg_is_the_stop_of_its_attempt() -> None:
    found = resolve_protective(
        BTC, EPISODE, Decimal("0.02997"), {_leg(0): OrderStatus.ACCEPTED}.get
    )
    assert found is not None and found[1].value == _leg(0) and found[2] is OrderStatus.ACCEPTED
    assert found[0].endswith("#0")


def test_a_list_not_placed_leaves_the_plain_stop_of_the_same_attempt() -> None:
    # the venue refused the list (its legs settled EXPIRED): the plain stop of attempt 0 is
    # the one to place, so the refusal and its fallback spend one attempt
    for settled in (OrderStatus.EXPIRED, OrderStatus.REJECTED):
        key, coid, status = _walk_ids({_leg(0): settled})
        assert key.endswith("#0") and coid == _plain(0) and status is None
    # that plain stop refused as "would trigger immediately" (EXPIRED): the next attempt
    key, coid, status = _walk_ids({_leg(0): OrderStatus.EXPIRED, _plain(0): OrderStatus.EXPIRED})
    assert key.endswith("#1") and coid == _plain(1) and status is None
    # a list cancelled (a resize, the kill-switch, a close) moves to the next attempt
    key, _coid, _status = _walk_ids({_leg(0): OrderStatus.CANCELED})
    assert key.endswith("#1")


def test_a_price_through_the_stop_spends_one_attempt_per_cycle() -> None:
    statuses: dict[str, OrderStatus] = {}
    for cycle in range(MAX_PROTECT_ATTEMPTS):
        key, coid, status = _walk_ids(statuses)
        assert key.endswith(f"#{cycle}") and status is None
        statuses[_leg(cycle)] = OrderStatus.EXPIRED  # the list: price relation
        assert _walk_ids(statuses)[1] == coid  # the plain stop of the same attempt
        statuses[coid] = OrderStatus.EXPIRED  # "would trigger immediately"
    assert resolve_protective(BTC, EPISODE, Decimal("0.02997"), statuses.get) is None


def _walk_ids(statuses: dict[str, OrderStatus]) -> tuple[str, str, object]:
    found = resolve_protective(BTC, EPISODE, Decimal("0.02997"), statuses.get)
    assert found is not None
    return found[0], found[1].value, found[2]


def test_the_attempt_of_a_protective_key_is_read_back() -> None:
    assert protective_attempt(protective_key("ep", Decimal("0.5"), 7)) == 7
    assert protective_attempt(protective_key("", Decimal("1"), 0)) == 0
    with pytest.raises(DomainError):
        protective_attempt("no attempt here")
