"""The dust a close leaves behind (the holding net of a commission in the base asset, floored to
the lot step) against the local fake Binance: closing it again and again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import MAX_CLOSE_ATTEMPTS, Intent, OrderStatus
from cryptosmarttrader.domain.types import DomainError
from tests.support import live_venue
from tests.support.live_venue import Rig, close, entry

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
