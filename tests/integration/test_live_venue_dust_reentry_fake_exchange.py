"""A new entry on a dust remainder against the local fake Binance: its fill adds to the dust
(the dust is part of what is held, at its cost, and sold with it later)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.types import Price, Quantity, Side
from tests.support import live_venue
from tests.support.live_venue import BTC, EQUITY, QUOTE, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def test_live_venue_a_new_entry_on_a_dust_remainder_adds_to_it(rig: Rig) -> None:
    # Given the 0.00000877 BTC dust a close left (below Binance's LOT_SIZE step) at its cost
    entry(rig.service(), "0.03123")
    close(rig.service())
    dust = rig.position()
    dust_qty, dust_cost = Decimal(str(dust["quantity"])), Decimal(str(dust["cost"]))
    assert Decimal(0) < dust_qty < Decimal("0.00001") and dust_cost > 0
    # and its episode ended (the exit rule's clock and the close IDs are not the dust's)
    assert dust.get("opened_by") is None and dust.get("opened_at") is None
    # When a new entry of 0.02 BTC is decided and fills (a later decision: its own client ID)
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_144_400_000,
                         Quantity.of("0.02"), Price.of("31400"))  # fmt: skip
    result = rig.service().submit(intent, equity=EQUITY, quote=QUOTE)
    assert result.status == OrderStatus.FILLED.value, result
    (bought,) = [
        o for o in rig.orders(Intent.OPEN) if o["client_order_id"] == result.client_order_id
    ]
    # Then the position holds the dust and what reached the account, at both costs
    after = rig.position()
    received = Decimal(str(bought["filled"]))
    paid = received * Decimal(str(bought["average_price"]))
    assert Decimal(str(after["quantity"])) == dust_qty + received
    assert Decimal(str(after["cost"])) == pytest.approx(dust_cost + paid, abs=Decimal("1e-6"))
    assert Decimal(str(after["realized_pnl"])) == Decimal(str(dust["realized_pnl"]))
    # and the entry opened a new episode from its own fill (not the dust's old opening)
    assert after["opened_by"] == result.client_order_id
    assert str(after["opened_at"]) == str(bought["filled_at"])
    # and a close sells it all but the new dust the lot step leaves
    sold = close(rig.service())
    assert sold.status == OrderStatus.FILLED.value, sold
    assert Decimal(str(rig.position()["quantity"])) < Decimal("0.00001")
