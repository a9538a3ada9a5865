"""Exit paths under venue faults, against the local fake Binance: the kill-switch sweep judging
a stop's remainder while the ticker cannot be read, and closes while the last price cannot be
read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from cryptosmarttrader.adapters.dynamodb_store import position_from_record
from cryptosmarttrader.domain.exchange import RetryableExchangeError
from cryptosmarttrader.domain.orders import MAX_CLOSE_ATTEMPTS, Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.types import DomainError, Price, Quantity, Side
from cryptosmarttrader.services.execution import RULES_UNKNOWN
from cryptosmarttrader.services.scan import ScanService
from cryptosmarttrader.settings import TradingSettings
from tests.support import live_venue
from tests.support.live_venue import (
    BTC,
    EQUITY,
    QUOTE,
    STOP,
    Rig,
    close,
    entry,
    stop_triggered_on_a_thin_book,
)

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
    # Given the stop (trigger 31000, limit 29450) triggered by the 14:00 bar on a thin book:
    # it sold all but 0.00017 BTC (worth 5.0065 USDT at its limit) and still rests for it
    rest = stop_triggered_on_a_thin_book(rig, "0.02980")
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
        # nothing could be sent (a market sell is sized at the last price): nothing recorded
        assert result.status == RULES_UNKNOWN and not result.sent, result
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


def test_live_venue_a_new_entry_on_a_remainder_the_scan_calls_dust_opens_its_own_episode(
    rig: Rig,
) -> None:
    entry(rig.service())
    opened = rig.position()["opened_at"]
    rig.service().protect_positions({BTC.value: STOP})
    # Given the stop triggered by the 14:00 bar on a thin book, selling all but 0.00024 BTC
    # (7.44 USDT at the stop: above Binance's 5 USDT minimum notional, below the scan's
    # dust_value_usd of 10 USD), its rest then cancelled by a close
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02973")
    rig.clock.advance(timedelta(hours=5))
    service = rig.service()
    service.reconcile()
    position = rig.position()
    rest = Decimal(str(position["quantity"]))
    assert rest == Decimal("0.00024")
    assert service._release_protection(BTC.value, "closing (test)") == "filled"
    assert [o["status"] for o in rig.orders(Intent.PROTECT)] == [OrderStatus.CANCELED.value]
    assert Decimal(str(rig.position()["quantity"])) == rest
    # worth less than the scan's dust value (the venue could still sell it): its episode ended
    assert rig.position().get("opened_by") is None and rig.position().get("opened_at") is None
    del rig.fake.max_fill_per_bar["BTCUSDT"]
    # the scan counts it as not held (a new entry in BTC is allowed, no exit row)
    holder = SimpleNamespace(settings=TradingSettings())
    held = position_from_record(position)
    assert ScanService._held(holder, held, 31000.0) == 0  # type: ignore[arg-type]
    # When a new entry in BTC fills on it
    rig.clock.advance(timedelta(hours=1))
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_205_600_000,
                         Quantity.of("0.03"), Price.of("31600"))  # fmt: skip
    fresh = MarketQuote(rig.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    result = rig.service().submit(intent, equity=EQUITY, quote=fresh)
    assert result.sent, result
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    after = rig.position()
    assert Decimal(str(after["quantity"])) > Decimal("0.03")
    # Then the new entry opens its own episode: the exit rule's days count from its fill, not
    # from the opening of the position the remainder was left by
    assert after["opened_by"] == intent.client_order_id.value, (after["opened_by"], opened)
    assert after["opened_at"] != opened


def test_live_venue_a_close_not_sent_while_the_last_price_cannot_be_read_is_not_counted_sent(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position, the venue's ticker unreadable
    entry(rig.service())
    _ticker_unreadable(rig, monkeypatch)
    # When the exit rule (or the EMERGENCY flatten) closes it
    result = close(rig.service())
    # Then nothing left (no sell on the venue), and the result does not say it was sent (the
    # cycle's exits and flatten count ``result.sent``)
    assert [p for p in rig.sent("POST") if p.get("side") == "SELL"] == []
    assert result.status == RULES_UNKNOWN, result
    assert not result.sent, result
    assert not rig.orders(Intent.CLOSE)  # nothing recorded: no close attempt spent
