from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import (
    ORDER_TRANSITIONS,
    IllegalTransitionError,
    Intent,
    OrderIntent,
    OrderStatus,
    client_order_id,
    transition,
)
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
)


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "0", "abc", float("nan")])
def test_price_rejects_non_positive_or_non_finite(bad: object) -> None:
    with pytest.raises(DomainError):
        Price.of(bad)  # type: ignore[arg-type]


def test_quantity_keeps_exact_decimal() -> None:
    assert Quantity.of(0.1).value == Decimal("0.1")


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(DomainError, match="currency mismatch"):
        Money(Decimal(1), "USD") + Money(Decimal(1), "EUR")


@pytest.mark.parametrize("bad", ["", "BTC/USDT/X", "bit coin", "/USDT"])
def test_symbol_rejects_malformed(bad: str) -> None:
    with pytest.raises(DomainError):
        Symbol(bad)


def _intent(**overrides: object) -> OrderIntent:
    fields: dict[str, object] = {
        "strategy": "s1",
        "symbol": Symbol("bitcoin"),
        "side": Side.BUY,
        "intent": Intent.OPEN,
        "signal_bar_ms": 1_600_000_000_000,
        "quantity": Quantity.of("0.5"),
        "reference_price": Price.of(100),
    }
    fields.update(overrides)
    return OrderIntent(**fields)  # type: ignore[arg-type]


def test_client_order_id_is_32_hex_and_deterministic() -> None:
    # Given the same decision twice
    a, b = _intent(), _intent()
    # Then the IDs are equal, 32 lowercase hex chars (128 bits)
    assert a.client_order_id == b.client_order_id
    assert len(a.client_order_id.value) == 32
    int(a.client_order_id.value, 16)


def test_client_order_id_matches_sha256_of_the_decision() -> None:
    import hashlib

    expected = hashlib.sha256(b"s1|bitcoin|buy|open|1600000000000|0.5").hexdigest()[:32]
    assert client_order_id(_intent()).value == expected


@pytest.mark.parametrize(
    "change",
    [
        {"strategy": "s2"},
        {"symbol": Symbol("ethereum")},
        {"side": Side.SELL},
        {"intent": Intent.CLOSE},
        {"signal_bar_ms": 1_600_000_000_001},
        {"quantity": Quantity.of("0.51")},
    ],
)
def test_every_identifying_field_changes_the_id(change: dict[str, object]) -> None:
    assert _intent(**change).client_order_id != _intent().client_order_id


def test_reference_price_does_not_change_the_id() -> None:
    # A re-priced retry of the same decision must dedupe to the same order
    assert _intent(reference_price=Price.of(101)).client_order_id == _intent().client_order_id


def test_quantity_formatting_is_canonical() -> None:
    assert _intent(quantity=Quantity.of("0.50")).client_order_id == _intent().client_order_id


def test_shortened_ids_fit_each_venue() -> None:
    cid = _intent().client_order_id
    assert cid.shortened(18).value == cid.value[:18]
    with pytest.raises(DomainError):
        cid.shortened(4)
    with pytest.raises(DomainError):
        ClientOrderId("NOT-HEX")


def test_order_transitions_table() -> None:
    assert transition(OrderStatus.NEW, OrderStatus.SUBMITTED) is OrderStatus.SUBMITTED
    with pytest.raises(IllegalTransitionError):
        transition(OrderStatus.FILLED, OrderStatus.CANCELED)
    with pytest.raises(IllegalTransitionError):
        transition(OrderStatus.NEW, OrderStatus.FILLED)
    # terminal states have no way out; every status appears in the table
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    for status in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED):
        assert ORDER_TRANSITIONS[status] == frozenset()
