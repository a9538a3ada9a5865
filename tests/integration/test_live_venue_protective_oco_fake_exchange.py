"""The protective OCO order list on the venue, through real ccxt against the local fake Binance.

The venue adapter's ``create_protective_oco`` / ``fetch_order_list`` / ``cancel_order_list``
speak Binance's ``POST /api/v3/orderList/oco``, ``GET /api/v3/orderList`` and
``DELETE /api/v3/orderList`` (signed, verified by the fake like every private request); the
legs fill on the recorded candles (BTC/USDT 2022-05-10, MANA/USDT 2021-10-28) and each is booked
from the venue's own trades.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, OrderRefusedError, ccxt_client
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import (
    FatalExchangeError,
    OrderListPricesError,
    OrderStateUnknownError,
    RetryPolicy,
)
from cryptosmarttrader.domain.orders import (
    OrderStatus,
    ProtectiveListIds,
    protective_key,
    protective_list_ids,
    protective_order_id,
)
from cryptosmarttrader.domain.types import Price, Quantity, Symbol
from cryptosmarttrader.domain.venue import VenueMode
from cst_devtools.fake_binance import FakeBinance, serve
from tests.support.live_venue import on_fake

pytestmark = pytest.mark.realdata

API_KEY = "q7Lm2XvB9nR4tK1wZcH8sJ3dF6gY0pA5eU2iO7lN4bM9vC1xT6rE3wQ8zS5aD0fG"
SECRET = "Xc4Vb7Nm1Qw9Er3Ty6Ui0Op2As5Df8Gh1Jk4Lz7Xc0Vb3Nm6Qw9Er2Ty5Ui8Op1As"
NOW = datetime(2022, 5, 10, 10, 0, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
BTC = Symbol("BTC/USDT")
HELD = Decimal("0.02997")
# the recorded 12:00 bar's high is 32311.22 (its low 31518.17): a take-profit at 32300 fills
# there; no bar reaches 32400 before the 14:00 bar's low (30819.98) triggers a stop at 31000
STOP = Decimal("31000.004")
LIMIT = STOP * Decimal("0.95")


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Desk:
    fake: FakeBinance
    clock: FixedClock
    venue: CcxtVenue

    def posts(self) -> list[dict[str, str]]:
        return [p for m, path, p in self.fake.requests if (m, path) == ("POST", _OCO)]

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        raw = self.venue._client.fetch_balance()
        return Decimal(str(raw["free"][asset])), Decimal(str(raw["used"][asset]))


_OCO = "/api/v3/orderList/oco"


def _desk(market: RecordedMarketData, now: datetime, balances: dict[str, Decimal]) -> Any:
    clock = FixedClock(now)
    fake = FakeBinance(API_KEY, SECRET, market, clock.now, balances=balances, client_timeout_s=0.5)
    fake.symbols["MANAUSDT"] = {  # listed with LTCUSDT's filters (step 0.001, tick 0.01)
        **fake.symbols["LTCUSDT"], "symbol": "MANAUSDT", "baseAsset": "MANA"
    }  # fmt: skip
    return clock, fake


@pytest.fixture
def desk(market: RecordedMarketData) -> Iterator[Desk]:
    clock, fake = _desk(market, NOW, {"USDT": Decimal("1000"), "BTC": HELD})
    fake.warm("BTCUSDT")
    with serve(fake) as url:
        creds = {"apiKey": API_KEY, "secret": SECRET}
        client = ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url=url)
        venue = CcxtVenue(
            on_fake(client, fake),
            clock,
            VenueMode.TESTNET,
            RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
            sleep=lambda _s: None,
        )
        yield Desk(fake, clock, venue)


def _ids(attempt: int = 0) -> ProtectiveListIds:
    return protective_list_ids(BTC, protective_key("entry-coid", HELD, attempt))


def _place(desk: Desk, take_profit: str = "32300", ids: ProtectiveListIds | None = None) -> Any:
    return desk.venue.create_protective_oco(
        BTC, Quantity(HELD), Price.of(take_profit), Price(STOP), Price(LIMIT), ids or _ids()
    )


def test_live_venue_fake_exchange_oco_ids_are_derived_distinct_and_keep_the_stops_id() -> None:
    key = protective_key("entry-coid", HELD, 0)
    ids = protective_list_ids(BTC, key)
    assert len({ids.list_id, ids.above, ids.below}) == 3
    # the stop leg has its own ID: a list the venue refused and the plain stop placed at once
    # in its place are one attempt of the position state, not two
    assert ids.below != protective_order_id(BTC, key)
    assert protective_list_ids(BTC, key) == ids  # the same position state, the same IDs
    other = protective_list_ids(BTC, protective_key("entry-coid", HELD, 1))
    assert not {other.list_id, other.above, other.below} & {ids.list_id, ids.above, ids.below}
    assert all(len(c.value) == 32 for c in (ids.list_id, ids.above, ids.below))


def test_live_venue_fake_exchange_oco_is_sent_in_binances_shape_and_locks_the_base_once(
    desk: Desk,
) -> None:
    placed = _place(desk, "32300.004")
    # one signed POST /api/v3/orderList/oco with Binance's own field names, on the venue's
    # precision: the stop and its limit floored to the 0.01 tick, the take-profit ceiled
    (sent,) = desk.posts()
    ids = _ids()
    assert sent["symbol"] == "BTCUSDT" and sent["side"] == "SELL"
    assert sent["quantity"] == "0.02997"
    assert sent["listClientOrderId"] == ids.list_id.value
    assert sent["aboveType"] == "LIMIT_MAKER" and sent["abovePrice"] == "32300.01"
    assert sent["aboveClientOrderId"] == ids.above.value
    assert sent["belowType"] == "STOP_LOSS_LIMIT" and sent["belowStopPrice"] == "31000.00"
    assert sent["belowPrice"] == "29450.00" and sent["belowTimeInForce"] == "GTC"
    assert sent["belowClientOrderId"] == ids.below.value
    assert "signature" not in sent  # verified and stripped by the fake: it was signed
    # the answer in Binance's list shape, parsed into the two legs
    assert not placed.done and placed.list_client_order_id == ids.list_id.value
    assert placed.above.order_type == "limit_maker" and placed.below.order_type == "stop_loss_limit"
    assert placed.above.client_order_id == ids.above.value
    assert placed.below.client_order_id == ids.below.value
    assert {placed.above.status, placed.below.status} == {OrderStatus.ACCEPTED}
    (raw,) = desk.fake.order_lists(ids.list_id.value)
    assert raw["contingencyType"] == "OCO" and raw["listStatusType"] == "EXEC_STARTED"
    assert [r["orderListId"] for r in raw["orderReports"]] == [raw["orderListId"]] * 2
    # the venue locks the quantity once for both legs
    assert desk.balance("BTC") == (Decimal(0), HELD)


def test_live_venue_fake_exchange_oco_refusals_are_binances(desk: Desk) -> None:
    # a take-profit below the last traded price (31397.68) breaks abovePrice > last > stop
    with pytest.raises(OrderListPricesError, match="relationship of the prices"):
        _place(desk, "31300")
    # prices out of order never leave the adapter
    with pytest.raises(OrderRefusedError, match="prices out of order"):
        _place(desk, "30000")
    # an open list's client ID cannot be used again
    _place(desk)
    with pytest.raises(FatalExchangeError):
        _place(desk)
    assert len(desk.posts()) == 3
    # a symbol without OCO is refused by the venue
    desk.fake.symbols["BTCUSDT"]["ocoAllowed"] = False
    with pytest.raises(FatalExchangeError, match="OCO orders are not supported"):
        _place(desk, ids=_ids(1))


def test_live_venue_fake_exchange_take_profit_leg_fills_on_the_recorded_high_and_the_stop_expires(
    desk: Desk,
) -> None:
    _place(desk)
    # When the 12:00 bar (high 32311.22) has closed
    desk.clock.advance(timedelta(hours=3))
    found = desk.venue.fetch_order_list(BTC, _ids().list_id)
    # Then the take-profit filled at its price, booked from the venue's trade with its real
    # commission, and the venue expired the stop: the list is done
    assert found is not None and found.done
    assert found.above.status is OrderStatus.FILLED and found.above.filled == HELD
    assert found.above.average == Price.of("32300")
    fee = (HELD * Decimal("32300") * Decimal("0.001")).quantize(Decimal("0.00000001"))
    assert found.above.fee == fee
    assert found.below.status is OrderStatus.EXPIRED and found.below.filled == 0
    (raw,) = desk.fake.order_lists(_ids().list_id.value)
    assert raw["listStatusType"] == "ALL_DONE" and raw["listOrderStatus"] == "ALL_DONE"
    assert desk.fake.balances["BTC"] == 0
    # and a cancel afterwards sends nothing (the list is finished)
    desk.venue.cancel_order_list(BTC, _ids().list_id)
    assert not [
        1 for m, path, _ in desk.fake.requests if (m, path) == ("DELETE", "/api/v3/orderList")
    ]


def test_live_venue_fake_exchange_stop_leg_triggers_and_the_venue_cancels_the_take_profit(
    desk: Desk,
) -> None:
    _place(desk, "32400")  # the 13:00 bar's high (32383.8) stops short of it
    desk.clock.advance(timedelta(hours=5))  # the 14:00 bar (low 30819.98) has closed
    found = desk.venue.fetch_order_list(BTC, _ids().list_id)
    assert found is not None and found.done
    assert found.below.status is OrderStatus.FILLED and found.below.average == Price.of("31000")
    assert found.above.status is OrderStatus.EXPIRED and found.above.filled == 0
    assert desk.fake.balances["BTC"] == 0


def test_live_venue_fake_exchange_cancel_by_list_id_cancels_both_legs_once(desk: Desk) -> None:
    _place(desk)
    desk.venue.cancel_order_list(BTC, _ids().list_id)
    desk.venue.cancel_order_list(BTC, _ids().list_id)  # the list is done: nothing sent
    deletes = [
        p for m, path, p in desk.fake.requests if (m, path) == ("DELETE", "/api/v3/orderList")
    ]
    assert [d["listClientOrderId"] for d in deletes] == [_ids().list_id.value]
    found = desk.venue.fetch_order_list(BTC, _ids().list_id)
    assert found is not None and found.done
    assert {found.above.status, found.below.status} == {OrderStatus.CANCELED}
    assert desk.balance("BTC") == (HELD, Decimal(0))  # unlocked
    # the open lists are empty; an unknown list is None
    assert desk.venue._client.private_get_openorderlist() == []
    assert desk.venue.fetch_order_list(BTC, _ids(3).list_id) is None
    # a list cancelled may be placed again under the next attempt's IDs, once
    _place(desk, ids=_ids(1))
    assert len(desk.fake.order_lists()) == 2


def test_live_venue_fake_exchange_oco_timeout_is_found_by_list_id_and_429_is_not_placed(
    desk: Desk,
) -> None:
    # a 429: the venue answered before any matching, nothing booked
    desk.fake.fail_next("POST", _OCO, "rate_limit")
    with pytest.raises(OrderStateUnknownError) as limited:
        _place(desk)
    assert limited.value.rate_limited
    assert desk.fake.order_lists() == []
    assert desk.venue.fetch_order_list(BTC, _ids().list_id) is None
    # booked, answered after the client gave up: unknown, then found by the list's client ID
    desk.fake.fail_next("POST", _OCO, "timeout_after_booking")
    with pytest.raises(OrderStateUnknownError) as timed_out:
        _place(desk)
    assert not timed_out.value.rate_limited
    found = desk.venue.fetch_order_list(BTC, _ids().list_id)
    assert found is not None and not found.done
    assert found.below.client_order_id == _ids().below.value
    assert len(desk.fake.order_lists()) == 1


def test_live_venue_fake_exchange_mana_take_profit_fills_as_mana_rallied_in_october_2021(
    market: RecordedMarketData,
) -> None:
    # MANA/USDT on 2021-10-28 rallied from 0.757 to a 1.00 high: a take-profit at 0.90 above
    # an entry at the 00:00 open fills on the 19:00 bar (high 0.9113); the stop at 0.70 is
    # never reached and the venue expires it
    mana = Symbol("MANA/USDT")
    start = datetime(2021, 10, 28, 0, 0, tzinfo=UTC)
    clock, fake = _desk(market, start, {"USDT": Decimal(0), "MANA": Decimal("180")})
    fake.warm("MANAUSDT")
    with serve(fake) as url:
        creds = {"apiKey": API_KEY, "secret": SECRET}
        client = ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url=url)
        venue = CcxtVenue(on_fake(client, fake), clock, VenueMode.TESTNET, sleep=lambda _s: None)
        ids = protective_list_ids(mana, protective_key("mana-entry", Decimal("180"), 0))
        venue.create_protective_oco(
            mana, Quantity.of("180"), Price.of("0.90"), Price.of("0.70"), Price.of("0.665"), ids
        )
        clock.advance(timedelta(hours=19))  # the 18:00 bar (high 0.8848) closed: still resting
        resting = venue.fetch_order_list(mana, ids.list_id)
        assert resting is not None and not resting.done
        clock.advance(timedelta(hours=1))  # the 19:00 bar closed
        found = venue.fetch_order_list(mana, ids.list_id)
    assert found is not None and found.done
    assert found.above.status is OrderStatus.FILLED and found.above.average == Price.of("0.90")
    assert found.below.status is OrderStatus.EXPIRED
    assert fake.balances["MANA"] == 0
    assert fake.balances["USDT"] == Decimal("162") - Decimal("0.162")  # 180 × 0.90 less 0.1 %


# -- Binance's documented payloads (hand-written protocol shapes, values from the API docs) ---


def _documented_oco(ids: ProtectiveListIds) -> dict[str, Any]:
    """``POST /api/v3/orderList/oco``'s documented ``RESULT`` answer (binance-spot-api-docs,
    rest-api.md), on BTCUSDT with our IDs and sell legs."""
    leg = {"symbol": "BTCUSDT", "orderListId": 1, "transactTime": 1710485608839,
           "origQty": "0.50000000", "executedQty": "0.00000000",
           "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
           "side": "SELL", "selfTradePreventionMode": "NONE"}  # fmt: skip
    return {
        "orderListId": 1,
        "contingencyType": "OCO",
        "listStatusType": "EXEC_STARTED",
        "listOrderStatus": "EXECUTING",
        "listClientOrderId": ids.list_id.value,
        "transactionTime": 1710485608839,
        "symbol": "BTCUSDT",
        "orders": [
            {"symbol": "BTCUSDT", "orderId": 10, "clientOrderId": ids.below.value},
            {"symbol": "BTCUSDT", "orderId": 11, "clientOrderId": ids.above.value},
        ],
        "orderReports": [
            {
                **leg,
                "orderId": 10,
                "clientOrderId": ids.below.value,
                "price": "38000.00000000",
                "type": "STOP_LOSS_LIMIT",
                "stopPrice": "40000.00000000",
                "workingTime": -1,
            },
            {
                **leg,
                "orderId": 11,
                "clientOrderId": ids.above.value,
                "price": "48000.00000000",
                "type": "LIMIT_MAKER",
                "workingTime": 1710485608839,
            },
        ],
    }


def _replayed_venue(routes: dict[str, list[Any]]) -> tuple[CcxtVenue, Any]:
    from cryptosmarttrader.domain.exchange import ExchangeId
    from tests.integration.test_ccxt_exchange import Replay, _client

    client = _client(ExchangeId.BINANCE)
    replay = Replay(routes)
    client.fetch = replay
    venue = CcxtVenue(
        client,
        FixedClock(datetime(2024, 3, 15, tzinfo=UTC)),
        VenueMode.LIVE,
        RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0),
        sleep=lambda _s: None,
    )
    return venue, replay


def test_live_venue_oco_documented_create_payload_is_sent_and_parsed() -> None:
    ids = protective_list_ids(BTC, protective_key("entry-coid", Decimal("0.5"), 0))
    venue, replay = _replayed_venue({"/api/v3/orderList/oco": [_documented_oco(ids)]})
    placed = venue.create_protective_oco(
        BTC, Quantity.of("0.5"), Price.of("48000"), Price.of("40000"), Price.of("38000"), ids
    )
    # the request: Binance's parameter names, signed, one POST
    ((method, url, _body),) = replay.requests
    assert method == "POST" and url.split("?")[0].endswith("/api/v3/orderList/oco")
    sent = {k: v[0] for k, v in replay.params().items()}
    assert {
        k: sent[k] for k in ("listClientOrderId", "aboveClientOrderId", "belowClientOrderId")
    } == {
        "listClientOrderId": ids.list_id.value,
        "aboveClientOrderId": ids.above.value,
        "belowClientOrderId": ids.below.value,
    }
    assert (sent["aboveType"], sent["belowType"], sent["belowTimeInForce"]) == (
        "LIMIT_MAKER", "STOP_LOSS_LIMIT", "GTC"
    )  # fmt: skip
    assert (sent["abovePrice"], sent["belowStopPrice"], sent["belowPrice"]) == (
        "48000", "40000", "38000"
    )  # fmt: skip
    assert sent["quantity"] == "0.5" and "signature" in sent and "timestamp" in sent
    # the answer: the list and its two legs
    assert (placed.order_list_id, placed.list_client_order_id) == ("1", ids.list_id.value)
    assert not placed.done
    assert placed.below.exchange_order_id == "10" and placed.above.exchange_order_id == "11"
    assert placed.below.price == Price.of("38000") and placed.above.price == Price.of("48000")
    assert (placed.below.status, placed.above.status) == (OrderStatus.ACCEPTED,) * 2


def test_live_venue_oco_documented_answer_missing_a_leg_is_an_unknown_state() -> None:
    ids = protective_list_ids(BTC, protective_key("entry-coid", Decimal("0.5"), 0))
    broken = _documented_oco(ids)
    broken["orderReports"] = broken["orderReports"][:1]  # the LIMIT_MAKER leg removed
    venue, _replay = _replayed_venue({"/api/v3/orderList/oco": [broken]})
    with pytest.raises(OrderStateUnknownError, match="LIMIT_MAKER"):
        venue.create_protective_oco(
            BTC, Quantity.of("0.5"), Price.of("48000"), Price.of("40000"), Price.of("38000"), ids
        )


def test_live_venue_oco_documented_query_and_cancel_payloads() -> None:
    ids = protective_list_ids(BTC, protective_key("entry-coid", Decimal("0.5"), 0))
    created = _documented_oco(ids)
    # GET /api/v3/orderList answers the list without reports; each leg is read by its ID
    listed = {k: v for k, v in created.items() if k != "orderReports"}
    below, above = ({**r, "time": 1710485608839, "updateTime": 1710485608839, "isWorking": True}
                    for r in created["orderReports"])  # fmt: skip
    done = {**listed, "listStatusType": "ALL_DONE", "listOrderStatus": "ALL_DONE"}
    venue, replay = _replayed_venue(
        {
            "/api/v3/orderList": [listed, listed, done],
            "/api/v3/order": [below, above],
        }
    )
    found = venue.fetch_order_list(BTC, ids.list_id)
    assert found is not None and not found.done
    assert found.below.order_type == "stop_loss_limit" and found.above.order_type == "limit_maker"
    gets = [replay.params(i) for i, (m, _u, _b) in enumerate(replay.requests) if m == "GET"]
    assert gets[0]["origClientOrderId"] == [ids.list_id.value]
    assert {g["origClientOrderId"][0] for g in gets[1:]} == {ids.below.value, ids.above.value}
    # DELETE /api/v3/orderList by the list's client ID (looked up first: still executing)
    # (then each leg looked up by its own ID: both cancelled with the list, nothing more sent)
    replay.routes["/api/v3/orderList"] = [listed, done]
    replay.routes["/api/v3/order"] = [
        {**below, "status": "CANCELED"},
        {**above, "status": "CANCELED"},
    ]
    sent = len(replay.requests)
    venue.cancel_order_list(BTC, ids.list_id)
    deletes = [i for i, (m, _u, _b) in enumerate(replay.requests) if m == "DELETE" and i >= sent]
    assert len(deletes) == 1 and "/api/v3/orderList" in replay.requests[deletes[0]][1]
    deleted = replay.params(deletes[0])
    assert deleted["listClientOrderId"] == [ids.list_id.value] and deleted["symbol"] == ["BTCUSDT"]
    # An ALL_DONE list (one leg executed) whose stop leg still works, triggered below its limit:
    # that leg is cancelled by its own ID (DELETE /api/v3/order), the list is not trusted
    working = {**below, "status": "PARTIALLY_FILLED", "executedQty": "0.10000000"}
    expired = {**above, "status": "EXPIRED"}
    replay.routes["/api/v3/orderList"] = [done]
    replay.routes["/api/v3/myTrades"] = [[]]
    # the stop leg read, its DELETE answered, the take-profit leg read
    replay.routes["/api/v3/order"] = [working, {**working, "status": "CANCELED"}, expired]
    sent = len(replay.requests)
    venue.cancel_order_list(BTC, ids.list_id)
    deletes = [i for i, (m, _u, _b) in enumerate(replay.requests) if m == "DELETE" and i >= sent]
    assert len(deletes) == 1, replay.requests[sent:]
    _method, url, _body = replay.requests[deletes[0]]
    assert "/api/v3/orderList" not in url and "/api/v3/order" in url
    assert replay.params(deletes[0])["origClientOrderId"] == [ids.below.value]
