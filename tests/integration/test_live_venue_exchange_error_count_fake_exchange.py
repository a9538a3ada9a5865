"""The exchange-error count that feeds the RiskGuard's breaker, against the local fake Binance:
one failed operation counts once. A market order the venue placed and filled, whose trades its
trade index does not show yet (the order's filled amount is ahead of ``myTrades``), fails the
create's booking and the lookup by client ID that follows it: one operation, one error."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import RiskThresholds
from cryptosmarttrader.domain.types import Price, Quantity, Side
from tests.support import live_venue
from tests.support.live_venue import BTC, EQUITY, QUOTE, Rig, metric

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


class _TradeIndexLag:
    """The venue's trade index behind its orders while ``lagging``: no trades yet."""

    def __init__(self, rig: Rig) -> None:
        self.lagging = True
        client = rig.venue._client
        real = client.fetch_order_trades

        def trades(*args: Any, **kwargs: Any) -> Any:
            return [] if self.lagging else real(*args, **kwargs)

        client.fetch_order_trades = trades


def test_live_venue_a_placed_order_whose_trades_are_not_indexed_yet_counts_one_error(
    rig: Rig,
) -> None:
    lag = _TradeIndexLag(rig)
    # When one buy is placed and filled while the trade index lags (create and lookup fail)
    service = rig.service()
    intent = OrderIntent("a", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                         Quantity.of("0.01"), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    # Then it is left SUBMITTED for reconcile, and counted as one exchange error
    assert result.status == OrderStatus.SUBMITTED.value, result
    assert "fills not readable" in result.reason and "lookup failed" in result.reason
    assert service.consecutive_exchange_errors == 1
    assert metric(rig, "ExchangeErrors") == 1
    # and two such orders in one cycle stay below the breaker's DEFENSIVE threshold (3)
    intent_b = OrderIntent("b", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                           Quantity.of("0.01"), Price.of("31400"))  # fmt: skip
    assert service.submit(intent_b, equity=EQUITY, quote=QUOTE).status == "SUBMITTED"
    assert service.consecutive_exchange_errors == 2
    thresholds = RiskThresholds()
    assert service.consecutive_exchange_errors < thresholds.exchange_errors_defensive
    # When the index catches up, the next reconcile books both fills (nothing resent)
    lag.lagging = False
    rig.clock.advance(timedelta(minutes=1))
    rig.service().reconcile()
    assert [o["status"] for o in rig.orders(Intent.OPEN)] == [OrderStatus.FILLED.value] * 2
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.02") * Decimal("0.999")
    assert rig.fake.posts() == 2
