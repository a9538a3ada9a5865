"""A plain stop cancelled to place its refused OCO list again: whatever the venue answers to
that list, the position is never left with nothing resting on the venue, through real ccxt
against the local fake Binance (the stores on the in-memory fakes)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.test_live_venue_protective_oco_fallback_fake_exchange import (
    OCO,
    TP,
    _protect,
    _protection,
)
from tests.support import live_venue
from tests.support.live_venue import Rig, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def test_a_rate_limited_list_retry_leaves_the_position_protected(rig: Rig) -> None:
    entry(rig.service())
    held = Decimal(str(rig.position()["quantity"]))
    # Given the list refused (-2010, the bid at the take-profit): the plain stop rests alone
    rig.fake.best_bid["BTCUSDT"] = TP
    first = _protect(rig)
    assert "OCO list not placed" in first, first
    assert _protection(rig) == held
    # When the last close is back between the stop and the take-profit and the next cycle
    # places the list again, Binance answering that list with HTTP 429 (nothing booked)
    del rig.fake.best_bid["BTCUSDT"]
    rig.fake.fail_next("POST", OCO, "rate_limit")
    note = _protect(rig)
    # Then the resting plain stop it cancelled is replaced by a stop in the same cycle: the
    # position is never left with nothing on the venue for an hour
    assert "cancelled to place the OCO list again" in note, note
    assert _protection(rig) == held, note
