"""The dust a close leaves behind (the holding net of a commission in the base asset, floored to
the lot step) against the local fake Binance: closing it again and again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import MAX_CLOSE_ATTEMPTS, Intent, OrderStatus
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.services.execution import DUST
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def test_live_venue_a_close_dust_never_exhausts_the_close_attempts(rig: Rig) -> None:
    # Given 0.03123 BTC bought (0.1 % commission taken in BTC: 0.03119877 reached the account)
    # and closed: the venue sells 0.03119 (the LOT_SIZE step is 0.00001), 0.00000877 is left
    entry(rig.service(), "0.03123")
    first = close(rig.service())
    assert first.status == OrderStatus.FILLED.value, first
    left = Decimal(str(rig.position()["quantity"]))
    assert Decimal(0) < left < Decimal("0.00001")
    # When the exit is decided again on each of the next cycles (the position still shows held)
    outcomes = []
    try:
        for _ in range(MAX_CLOSE_ATTEMPTS + 2):
            outcomes.append(close(rig.service()).status)
    except DomainError as exc:
        pytest.fail(f"after {len(outcomes)} closes of the dust the cycle raises: {exc}")
    # Then nothing more than one refused close of the dust is recorded
    refused = [o for o in rig.orders(Intent.CLOSE) if o["status"] == OrderStatus.REJECTED.value]
    assert len(refused) <= 1, f"{len(refused)} closes of a {left} dust recorded and refused"


def test_live_venue_a_close_dust_is_reported_as_dust_with_its_quantity_and_value(
    rig: Rig,
) -> None:
    # Given the 0.00000877 BTC a close left behind (below Binance's LOT_SIZE step)
    entry(rig.service(), "0.03123")
    close(rig.service())
    left = Decimal(str(rig.position()["quantity"]))
    # When the exit is decided again and the protective step runs
    service = rig.service()
    again = close(service)
    note = service.protect_positions({BTC.value: STOP})[BTC.value]
    # Then the position is closed for trading: no close recorded, sent or spent on it, no stop
    assert again.status == DUST and not again.sent, again
    assert f"{left.normalize():f} BTC" in again.reason and "worth 0.274501 USDT" in again.reason
    assert "amount step 0.00001" in again.reason
    assert note.startswith("dust:") and "no protective stop" in note, note
    assert [o["status"] for o in rig.orders(Intent.CLOSE)] == [OrderStatus.FILLED.value]
    assert rig.orders(Intent.PROTECT) == []
    assert len(rig.sent("POST")) == 2  # the entry and the first close
