"""A live Binance key is asked what it may do before anything is sent with it.

Real ccxt (``binance``, live mode) signs ``GET /sapi/v1/account/apiRestrictions``; the production
host is served by ``cst_devtools.fake_binance`` (signature, key header and timestamp verified)
through ``cst_devtools.venue_redirect`` (``live=True``), which fails any request to another host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks, KeyRefusedError
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.venue import VenueMode
from cryptosmarttrader.venues import VenueKeysRefusedError, verify_trading_keys
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.venue_redirect import SandboxRedirect, binance_sandbox_served_by

pytestmark = pytest.mark.realdata

API_KEY = "pK7Qw2e9LiveTradeKeyForTestsOnly00000000000000000000000000000000"
SECRET = "sE3s9LiveTradeSecretForTestsOnly1111111111111111111111111111111"
ROTATED = "rO7Qw2e9RotatedTradeKeyForTestsOnly22222222222222222222222222222"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PATH = "/sapi/v1/account/apiRestrictions"


@dataclass
class Live:
    fake: FakeBinance
    redirect: SandboxRedirect

    def venue(self, api_key: str = API_KEY, mode: VenueMode = VenueMode.LIVE) -> CcxtVenue:
        client = ccxt_client("binance", mode, {"apiKey": api_key, "secret": SECRET})
        return CcxtVenue(client, FixedClock(NOW), mode)

    def asked(self) -> int:
        return sum(1 for m, p, _ in self.fake.requests if (m, p) == ("GET", PATH))


@pytest.fixture
def live(data_dir: Path) -> Iterator[Live]:
    fake = FakeBinance(API_KEY, SECRET, RecordedMarketData(data_dir), lambda: NOW)
    with serve(fake) as url, binance_sandbox_served_by(url, live=True) as redirect:
        yield Live(fake, redirect)


def test_live_venue_trade_only_key_is_accepted_after_a_signed_check(live: Live) -> None:
    checks = KeyPermissionChecks(FixedClock(NOW))
    assert verify_trading_keys(live.venue(), "binance", checks) is None
    # the fake verified the key header, the signature and the timestamp of the one signed
    # request (after the venue's server time was read)
    [(_, time_path, _), (method, path, params)] = live.fake.requests
    assert time_path == "/api/v3/time"
    assert (method, path) == ("GET", PATH) and "timestamp" in params
    assert live.fake.posts() == 0


@pytest.mark.parametrize("host_off_ms", [-300_000, 60_000])
def test_live_venue_key_check_is_signed_on_binances_clock_when_the_host_clock_is_off(
    live: Live, host_off_ms: int
) -> None:
    # Given a host clock 5 minutes behind, or 1 minute ahead of, Binance's
    live.fake.server_clock_offset_ms = -host_off_ms
    # When the key is checked before anything else (no markets loaded yet)
    checks = KeyPermissionChecks(FixedClock(NOW))
    # Then the signed check is accepted: stamped on Binance's clock, not the host's
    assert verify_trading_keys(live.venue(), "binance", checks) is None
    assert live.asked() == 1


@pytest.mark.parametrize(
    ("flag", "value", "why"),
    [
        ("enableWithdrawals", True, "withdrawals enabled"),
        ("enableInternalTransfer", True, "internal transfers enabled"),
        ("permitsUniversalTransfer", True, "universal transfers enabled"),
        ("enableSpotAndMarginTrading", False, "spot trading not enabled"),
    ],
)
def test_live_venue_key_that_can_move_funds_or_cannot_trade_is_refused_before_any_order(
    live: Live, flag: str, value: bool, why: str
) -> None:
    live.fake.api_restrictions[flag] = value
    with pytest.raises(VenueKeysRefusedError) as refused:
        verify_trading_keys(live.venue(), "binance", KeyPermissionChecks(FixedClock(NOW)))
    [line] = str(refused.value).splitlines()
    assert line.startswith("binance live: trading key refused (") and why in line
    assert API_KEY not in line and SECRET not in line
    # only the server time and the permissions were asked: no balance read, no order
    assert [(m, p) for m, p, _ in live.fake.requests] == [("GET", "/api/v3/time"), ("GET", PATH)]


def test_live_venue_check_is_cached_per_key_and_done_again_after_rotation_or_its_age(
    live: Live,
) -> None:
    clock = FixedClock(NOW)
    checks = KeyPermissionChecks(clock, max_age=timedelta(minutes=10))
    assert verify_trading_keys(live.venue(), "binance", checks) is None
    assert verify_trading_keys(live.venue(), "binance", checks) is None
    assert live.asked() == 1  # cached: the same key is not asked twice
    # the key is rotated to one that may withdraw: a new key id, asked at once
    live.fake.api_key = ROTATED
    live.fake.api_restrictions["enableWithdrawals"] = True
    with pytest.raises(VenueKeysRefusedError, match="withdrawals enabled"):
        verify_trading_keys(live.venue(ROTATED), "binance", checks)
    assert live.asked() == 2
    # the same key's permissions changed on the venue: seen once the cached answer is too old
    live.fake.api_key = API_KEY
    assert verify_trading_keys(live.venue(), "binance", checks) is None  # still cached
    clock.advance(timedelta(minutes=10))
    with pytest.raises(VenueKeysRefusedError, match="withdrawals enabled"):
        verify_trading_keys(live.venue(), "binance", checks)
    assert live.asked() == 3


def test_live_venue_unreadable_permissions_refuse_without_the_key_in_logs_or_errors(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    # the venue refuses the signed request (a key it does not know): the permissions are
    # unknown, so the key is refused; the message is one line and names neither key nor secret
    live.fake.api_key = ROTATED
    caplog.set_level(logging.DEBUG, logger="cryptosmarttrader")
    with pytest.raises(KeyRefusedError) as refused:
        verify_trading_keys(live.venue(), "binance", KeyPermissionChecks(FixedClock(NOW)))
    [line] = str(refused.value).splitlines()
    assert "permissions could not be read" in line and "Invalid API-key" in line
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("cryptosmarttrader")]
    for text in (line, *ours):
        assert API_KEY not in text and SECRET not in text and "signature=" not in text
    assert live.fake.posts() == 0


def test_live_venue_testnet_has_no_permission_endpoint_and_says_so(live: Live) -> None:
    note = verify_trading_keys(
        live.venue(mode=VenueMode.TESTNET), "binance", KeyPermissionChecks(FixedClock(NOW))
    )
    assert note is not None and "no /sapi endpoints" in note and "live venue requires" in note
    assert live.fake.requests == []
