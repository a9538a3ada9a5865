"""Kraken's liquid universe comes from its markets and 24 h tickers under the same liquidity
floor as every other venue, quoted in USD (ccxt's unified ``USD``; Kraken's asset id ``ZUSD``).

ccxt's Kraken client keeps its real parsing; its markets are the recorded ccxt static markets
(tests/fixtures/exchanges/kraken/markets.json and markets_usd.json) and its HTTP ``fetch``
serves the recorded ``Ticker`` answer (``XBTUSDT`` only: no all-pairs Ticker answer of Kraken
is recorded, so the USD pairs below have no recorded 24 h volume and the floor logic on USD
volumes is checked on its own in the last test, with volumes named relative to the floor).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ccxt
import pytest

from cryptosmarttrader.adapters.ccxt_agent_feeds import CcxtVenueFeeds
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import RetryPolicy
from cryptosmarttrader.domain.universe import spot_quote
from cryptosmarttrader.services.agent_ingest import (
    UniverseRule,
    UniverseService,
    select_universe,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exchanges" / "kraken"
NOW = datetime(2024, 3, 14, 23, 50, tzinfo=UTC)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class _Memory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.items.get((pk, sk))

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None:
        self.items[(pk, sk)] = item


def _kraken() -> tuple[CcxtVenueFeeds, list[str]]:
    client = ccxt.kraken({"enableRateLimit": True})
    client.rateLimit = 0
    client.set_markets(_load("markets.json") + _load("markets_usd.json"))
    urls: list[str] = []

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        urls.append(url)
        assert "/public/Ticker" in url, url
        return _load("ticker_btcusdt.json")

    client.fetch = fetch
    return CcxtVenueFeeds(client, FixedClock(NOW), RetryPolicy(max_attempts=1)), urls


def test_kraken_spot_quote_is_usd_and_the_others_usdt() -> None:
    assert spot_quote("kraken") == "USD"
    assert spot_quote("binance") == spot_quote("kucoin") == "USDT"


def test_kraken_usd_pairs_come_from_its_markets_with_their_recorded_24h_volume() -> None:
    feeds, urls = _kraken()

    usd = feeds.spot_quote_volumes("USD")
    usdt = feeds.spot_quote_volumes("USDT")

    # the ZUSD-quoted markets are ccxt's USD pairs; the USDT ones are not among them
    assert set(usd) == {"BTC/USD", "XRP/USD"}
    # the recorded Ticker answer quotes XBTUSDT only: the USD pairs report no volume
    assert usd == {"BTC/USD": None, "XRP/USD": None}
    # ccxt's Kraken quote volume = 24 h base volume x 24 h vwap, from the recorded answer
    assert usdt["BTC/USDT"] == pytest.approx(598.03698452 * 71501.5752)
    assert usdt["LTC/USDT"] is None
    # one bulk request for all pairs (no pair list in the query)
    assert all("pair=" not in u for u in urls)


def test_kraken_universe_applies_the_floor_and_names_why_each_pair_is_left_out() -> None:
    feeds, _ = _kraken()
    service = UniverseService(_Memory(), FixedClock(NOW))  # type: ignore[arg-type]

    # USD is Kraken's quote: no USD pair has a recorded volume, so nothing passes the floor
    # and the selection says so instead of keeping a fixed list
    with pytest.raises(ValueError, match="no kraken spot USD pair passes the liquidity floor"):
        service.select("kraken", feeds, UniverseRule(quote=spot_quote("kraken")))

    # the same floor on the recorded USDT ticker: BTC/USDT's 42.8 M passes, the rest say why
    chosen = service.select("kraken", feeds, UniverseRule(quote="USDT"))
    assert chosen.pairs == ("BTC/USDT",)
    assert chosen.excluded["LTC/USDT"] == "no 24h volume reported"


def test_usd_quoted_selection_keeps_liquid_coins_and_leaves_out_fiat_stable_and_thin() -> None:
    floor = UniverseRule(quote="USD", min_quote_volume_usd=1_000_000.0, max_pairs=2)
    volumes: dict[str, float | None] = {
        "BTC/USD": floor.min_quote_volume_usd * 40,
        "XRP/USD": floor.min_quote_volume_usd * 3,
        "ADA/USD": floor.min_quote_volume_usd * 2,
        "DOGE/USD": floor.min_quote_volume_usd / 2,
        "EUR/USD": floor.min_quote_volume_usd * 50,
        "USDT/USD": floor.min_quote_volume_usd * 60,
        "BTC/USDT": floor.min_quote_volume_usd * 90,
        "LTC/USD": None,
    }

    pairs, excluded = select_universe(volumes, floor)

    assert pairs == ["BTC/USD", "XRP/USD"]
    assert excluded["ADA/USD"] == "beyond the 2 most liquid pairs"
    assert excluded["DOGE/USD"].startswith("below the liquidity floor")
    assert excluded["EUR/USD"].startswith("not a growth candidate: fiat currency base EUR")
    assert excluded["USDT/USD"].startswith("not a growth candidate: stablecoin base USDT")
    assert excluded["BTC/USDT"] == "not quoted in USD"
    assert excluded["LTC/USD"] == "no 24h volume reported"
