from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import RecordedOrder
from cryptosmarttrader.domain.order_changes import OrderFacts
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

    # the decision alone: strategy, symbol, side, intent, signal bar (never the quantity)
    expected = hashlib.sha256(b"s1|bitcoin|buy|open|1600000000000").hexdigest()[:32]
    assert client_order_id(_intent()).value == expected


@pytest.mark.parametrize(
    "change",
    [
        {"strategy": "s2"},
        {"symbol": Symbol("ethereum")},
        {"side": Side.SELL},
        {"intent": Intent.CLOSE},
        {"signal_bar_ms": 1_600_000_000_001},
    ],
)
def test_every_identifying_field_changes_the_id(change: dict[str, object]) -> None:
    assert _intent(**change).client_order_id != _intent().client_order_id


def test_a_riskguard_reduced_quantity_keeps_the_decisions_id() -> None:
    # A re-run that sizes the same decision differently must find the order already recorded
    assert _intent(quantity=Quantity.of("0.21")).client_order_id == _intent().client_order_id


def _close(strategy: str, bar_ms: int, key: str | None = "open-1#0") -> OrderIntent:
    return OrderIntent(
        strategy, Symbol("bitcoin"), Side.SELL, Intent.CLOSE, bar_ms, Quantity.of("0.5"),
        Price.of(100), position_key=key,
    )  # fmt: skip


def test_a_close_is_keyed_on_its_position_not_on_who_decided_or_the_bar() -> None:
    import hashlib

    scan, flatten = _close("s1", 1_600_000_000_000), _close("riskguard-flatten", 1_600_003_600_000)
    assert scan.client_order_id == flatten.client_order_id
    expected = hashlib.sha256(b"close|bitcoin|sell|open-1#0").hexdigest()[:32]
    assert scan.client_order_id.value == expected
    # another attempt, or another opening of the position, is another order
    assert _close("s1", 1, "open-1#1").client_order_id != scan.client_order_id
    assert _close("s1", 1, "open-2#0").client_order_id != scan.client_order_id
    # a close without a key keeps the decision's identity
    assert _close("s1", 1, None).client_order_id != scan.client_order_id


def test_only_a_sell_close_names_a_position() -> None:
    with pytest.raises(DomainError):
        _intent(position_key="open-1#0")
    with pytest.raises(DomainError):
        _close("s1", 1, "")


def test_resolve_close_walks_the_attempts_of_one_position() -> None:
    from cryptosmarttrader.domain.orders import resolve_close

    base = _close("s1", 1, None)
    stored: dict[str, OrderStatus] = {}

    def status_of(coid: str) -> OrderStatus | None:
        return stored.get(coid)

    # no close yet: attempt 0 is the order to record
    first, live = resolve_close(base, "open-1", status_of)
    assert (first.position_key, live) == ("open-1#0", None)
    # while it is open, it is the close (whoever asks): nothing new
    stored[first.client_order_id.value] = OrderStatus.ACCEPTED
    again, live = resolve_close(_close("riskguard-flatten", 9, None), "open-1", status_of)
    assert (again.client_order_id, live) == (first.client_order_id, OrderStatus.ACCEPTED)
    # once it ended without closing (expired), the next attempt is a new decision
    stored[first.client_order_id.value] = OrderStatus.EXPIRED
    second, live = resolve_close(base, "open-1", status_of)
    assert (second.position_key, live) == ("open-1#1", None)
    # a bounded walk: a position whose closes keep failing is reported, not looped over
    with pytest.raises(DomainError, match="ended without closing"):
        resolve_close(base, "open-1", lambda _: OrderStatus.REJECTED, max_attempts=3)


def _sell(
    coid: str, symbol: str, status: str, qty: str, filled: str | None = None,
    list_id: str | None = None, side: Side = Side.SELL,
) -> RecordedOrder:  # fmt: skip
    """A recorded protective sell (a buy when ``side`` says so) of the hand-made book; its
    client ID (and its list's) is ``coid`` repeated."""
    order = Order(
        ClientOrderId(coid * 8), Symbol(symbol), side, Intent.PROTECT, "s", 1, Quantity.of(qty),
        Price.of("1"), datetime(2024, 3, 1, tzinfo=UTC), "paper", OrderStatus(status),
        list_client_order_id=None if list_id is None else ClientOrderId(list_id * 8),
    )  # fmt: skip
    return RecordedOrder(order, OrderFacts(filled=None if filled is None else Decimal(filled)))


def _held(qty: str) -> Position:
    return Position(Symbol("X"), quantity=Decimal(qty), cost=Decimal(qty))


def test_holding_counts_open_sells_and_never_goes_below_zero() -> None:
    from cryptosmarttrader.domain.book import holding
    from cryptosmarttrader.domain.orders import sell_fill_split

    orders = [
        _sell("a", "X", "ACCEPTED", "3", filled="1"),
        _sell("b", "X", "NEW", "1"),
        _sell("c", "X", "FILLED", "4", filled="4"),
        _sell("d", "X", "ACCEPTED", "9", side=Side.BUY),
        _sell("e", "Y", "ACCEPTED", "9"),
    ]
    position = _held("5")
    assert holding("X", position, orders).sellable == Decimal("3")  # 5 held - 2 unfilled of a
    assert holding("X", position, orders, include_new=True).sellable == Decimal("2")
    assert holding("X", position, orders, exclude="a" * 8).sellable == Decimal("5")
    assert holding("X", _held("1"), orders).sellable == 0  # never negative
    assert holding("X", None, []).held == 0
    assert sell_fill_split(Decimal("2"), Decimal("3")) == (Decimal("2"), Decimal("1"))
    assert sell_fill_split(Decimal("5"), Decimal("3")) == (Decimal("3"), Decimal("0"))


def test_live_venue_oco_legs_lock_the_holding_once() -> None:
    from cryptosmarttrader.domain.book import holding

    # the take-profit and the stop of one OCO list sell the same 2 of the 5 held
    legs = [
        _sell("1f", "X", "ACCEPTED", "2", list_id="0c"),
        _sell("5f", "X", "ACCEPTED", "2", list_id="0c"),
    ]
    assert holding("X", _held("5"), legs).sellable == Decimal("3")
    # a partly filled take-profit: the larger unfilled quantity of the two legs counts
    legs[0] = _sell("1f", "X", "ACCEPTED", "2", filled="1.5", list_id="0c")
    assert holding("X", _held("5"), legs).sellable == Decimal("3")
    legs[1] = _sell("5f", "X", "EXPIRED", "2", list_id="0c")
    assert holding("X", _held("3.5"), legs).sellable == Decimal("3")


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


def test_a_partly_filled_order_the_venue_expires_is_expired() -> None:
    # Binance expires the rest of a partly filled order by its own rules (self-trade
    # prevention, a maintenance expiry of a list leg): its fill stays booked, the rest ends
    assert transition(OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED) is OrderStatus.EXPIRED
    with pytest.raises(IllegalTransitionError):
        transition(OrderStatus.EXPIRED, OrderStatus.PARTIALLY_FILLED)
