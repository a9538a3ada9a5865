"""Exit paths under venue faults, against the local fake Binance: the kill-switch sweep judging
a stop's remainder while the ticker cannot be read, and closes while the last price cannot be
read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.exchange import RetryableExchangeError
from cryptosmarttrader.domain.orders import MAX_CLOSE_ATTEMPTS, Intent, OrderStatus
from cryptosmarttrader.domain.types import DomainError, Quantity
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def _ticker_unreadable(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.venue.market(BTC)  # the rules are loaded: only the last price cannot be read

    def unreadable(*_args: Any) -> Any:
        raise RetryableExchangeError("binance", "fetch_tickers", "read timeout")

    monkeypatch.setattr(rig.venue, "fetch_tickers", unreadable)


def test_live_venue_kill_switch_keeps_a_triggered_stop_whose_remainder_is_unsellable_below_its_limit(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    # Given the stop (trigger 31000, limit 29450) triggered by the 14:00 bar on a thin book:
    # it sold all but 0.00017 BTC (worth 5.0065 USDT at its limit) and still rests for it
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02980")
    rig.clock.advance(timedelta(hours=5))
    rig.service().reconcile()
    rest = Decimal(str(rig.position()["quantity"]))
    assert rest == Decimal("0.00017")
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.PARTIALLY_FILLED.value
    # and the market fell below the stop's limit (the evening of 2022-05-11, ~28500): the rest
    # of the triggered stop is not reached, and the flatten could not sell the remainder
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0")
    rig.clock.advance(datetime(2022, 5, 11, 21, 30, tzinfo=UTC) - rig.clock.now())
    refusal = rig.venue.market_sell_refusal(BTC, Quantity(rest))
    assert refusal is not None and "minimum notional" in refusal, refusal
    # When the kill-switch sweep runs while the ticker cannot be read
    _ticker_unreadable(rig, monkeypatch)
    rig.switch(True)
    report = rig.service().cancel_open_orders("kill-switch on: operator test")
    monkeypatch.undo()
    # Then the remainder's only exit should still rest on the venue: the market sell the
    # flatten sends is refused at the market price (below the stop's limit)
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.PARTIALLY_FILLED.value, (stop["status"], report)
    assert rig.venue.market_sell_refusal(BTC, Quantity(rest)) is not None


def test_live_venue_closes_while_the_last_price_cannot_be_read_do_not_spend_the_position(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position of 0.03 BTC, the venue's rules readable, its ticker not (a read timeout)
    entry(rig.service())
    _ticker_unreadable(rig, monkeypatch)
    # When the exit rule closes it, once per cycle, while the ticker stays unreadable
    for _ in range(MAX_CLOSE_ATTEMPTS):
        result = close(rig.service())
        assert result.status == OrderStatus.EXPIRED.value, result
        rig.clock.advance(timedelta(hours=1))
    monkeypatch.undo()
    spent = [o for o in rig.orders(Intent.CLOSE) if o["status"] == OrderStatus.EXPIRED.value]
    # Then, the ticker back, the position can still be closed (nothing was sent: no attempt
    # should have been spent on those cycles)
    try:
        after = close(rig.service())
    except DomainError as exc:
        pytest.fail(f"{len(spent)} close attempts spent on not-sent orders: {exc}")
    assert after.sent, after
