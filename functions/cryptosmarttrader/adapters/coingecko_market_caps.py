"""Market-cap sources for the lake: CoinGecko's public ``/coins/markets`` (live) and the recorded
CoinGecko daily CSVs (replays). Both implement the ``MarketCapSource`` port.

Live: one GET ``/api/v3/coins/markets?vs_currency=usd&ids=<ids>&per_page=250`` per 250 coins.
Each element is validated with :class:`CoinMarketRow` (the fields used; the endpoint's other
fields are ignored). A row is rejected with its reason when it fails validation (a string or a
boolean where a number belongs, no id), has no ``last_updated``, was last updated more than
``max_age`` before the fetch or after it, or is a coin that was not asked for. A coin asked for
and absent from the answer is reported too. Accepted rows are keyed at the next UTC midnight
after ``last_updated`` (:func:`cryptosmarttrader.domain.coins.day_key_ms`); whether the cap is a
positive number is the domain gate's decision (``check_market_caps``), which runs on both sources.

Recorded: the ``market_cap`` column of ``coingecko_daily/coins/<id>.csv`` (daily 00:00 UTC
snapshots), as recorded, within the requested window, whose end is keyed as the live fetch keys
it: a replay in the last ten minutes before a midnight (the 23:55 rule's run) gets the row
dated that midnight, the end-of-day value a live fetch then observes (a snapshot of the end of
day D matches CoinGecko's 00:00 row of D + 1); earlier in the day, only rows up to the fetch. A coin without a file is reported.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.domain.coins import (
    MARKET_CAP_SCHEMA,
    MarketCapBatch,
    MarketCapSourceError,
    day_key_ms,
    empty_market_caps,
)
from cryptosmarttrader.domain.types import ms_from_utc

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData

__all__ = [
    "COINGECKO_CHART_URL",
    "COINGECKO_MARKETS_URL",
    "CoinGeckoMarketCaps",
    "CoinGeckoMarketHistory",
    "CoinMarketRow",
    "RecordedMarketCaps",
    "parse_market_chart",
    "parse_markets",
]

COINGECKO_MARKETS_URL: Final = "https://api.coingecko.com/api/v3/coins/markets"
PAGE_SIZE: Final = 250  # the endpoint's maximum per_page
FUTURE_SKEW: Final = timedelta(minutes=5)
HTTP_TIMEOUT_S: Final = 20


StrictNumber = Annotated[float, Field(strict=True)]


class CoinMarketRow(BaseModel):
    """The fields of one ``/coins/markets`` element that the lake keeps."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=200, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    symbol: str = Field(min_length=1, max_length=50)
    market_cap: StrictNumber | None
    last_updated: AwareDatetime | None


def parse_markets(
    body: bytes, coins: Sequence[str], fetched_at: datetime, max_age: timedelta
) -> MarketCapBatch:
    """Validate one ``/coins/markets`` answer; see the module doc for what is rejected."""
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MarketCapSourceError(f"/coins/markets: not JSON ({exc})", retryable=True) from exc
    if not isinstance(payload, list):
        status = payload.get("status") if isinstance(payload, dict) else None
        raise MarketCapSourceError(
            f"/coins/markets: expected a JSON list, got {type(payload).__name__}"
            + (f" ({status})" if status else ""),
            retryable=True,
        )
    wanted = set(coins)
    seen: set[str] = set()
    rows: list[tuple[str, int, float | None]] = []
    rejected: list[tuple[str, str]] = []
    fetched_ms = ms_from_utc(fetched_at)
    for index, raw in enumerate(payload):
        label = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        label = label or f"#{index}"
        try:
            row = CoinMarketRow.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "row"
            rejected.append((label, f"invalid: {where}: {first['msg']}"))
            continue
        reason = _row_reason(row, wanted, seen, fetched_at, max_age)
        if reason is not None:
            rejected.append((row.id, reason))
            continue
        assert row.last_updated is not None
        seen.add(row.id)
        cap = row.market_cap
        rows.append((row.id, day_key_ms(ms_from_utc(row.last_updated)), cap))
    rejected.extend(
        (coin, f"absent: not in the /coins/markets answer fetched at {fetched_ms}")
        for coin in sorted(wanted - seen - {c for c, _ in rejected})
    )
    frame = (
        pl.DataFrame(rows, schema=MARKET_CAP_SCHEMA, orient="row") if rows else empty_market_caps()
    )
    return MarketCapBatch(frame, tuple(rejected))


def _row_reason(
    row: CoinMarketRow,
    wanted: set[str],
    seen: set[str],
    fetched_at: datetime,
    max_age: timedelta,
) -> str | None:
    if row.id not in wanted:
        return f"unrequested: {row.id} was not asked for"
    if row.id in seen:
        return f"duplicate: {row.id} appears twice in the answer"
    if row.last_updated is None:
        return "no_time: no last_updated, so no day to key the value to"
    if row.last_updated > fetched_at + FUTURE_SKEW:
        return f"future: last_updated {row.last_updated.isoformat()} is after the fetch"
    if row.last_updated < fetched_at - max_age:
        return f"stale: last_updated {row.last_updated.isoformat()} is older than {max_age}"
    if row.market_cap is not None and math.isnan(row.market_cap):
        return "missing_cap: market cap is NaN"
    return None


def _urllib_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310 - https URL built from a constant
    where = urllib.parse.urlparse(url).path.removeprefix("/api/v3")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise MarketCapSourceError(
            f"{where}: HTTP {exc.code}", retryable=exc.code == 429 or exc.code >= 500
        ) from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise MarketCapSourceError(f"{where}: {exc}", retryable=True) from exc


class CoinGeckoMarketCaps:
    """Live snapshot of CoinGecko market caps; ``start``/``end`` only bound what is accepted."""

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        get: Callable[[str], bytes] = _urllib_get,
        base_url: str = COINGECKO_MARKETS_URL,
        max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self._now = now
        self._get = get
        self._base_url = base_url
        self._max_age = max_age

    def url(self, coins: Sequence[str]) -> str:
        query = {
            "vs_currency": "usd",
            "ids": ",".join(coins),
            "order": "market_cap_desc",
            "per_page": str(PAGE_SIZE),
            "page": "1",
            "sparkline": "false",
        }
        return f"{self._base_url}?{urllib.parse.urlencode(query)}"

    def fetch_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> MarketCapBatch:
        frames: list[pl.DataFrame] = []
        rejected: list[tuple[str, str]] = []
        for first in range(0, len(coins), PAGE_SIZE):
            chunk = list(coins[first : first + PAGE_SIZE])
            fetched_at = self._now()
            batch = parse_markets(self._get(self.url(chunk)), chunk, fetched_at, self._max_age)
            frames.append(batch.frame)
            rejected.extend(batch.rejected)
        frame = pl.concat(frames) if frames else empty_market_caps()
        start_ms, end_ms = ms_from_utc(start), day_key_ms(ms_from_utc(end))
        return MarketCapBatch(
            frame.filter(pl.col("ts").is_between(start_ms, end_ms)), tuple(rejected)
        )


# ----------------------------------------------------------------------------- history
COINGECKO_CHART_URL: Final = "https://api.coingecko.com/api/v3/coins/{coin}/market_chart"
# CoinGecko's public API allows a handful of calls a minute (its documented free limits are
# 5-30 per minute depending on the plan and load): one history call every 6 s stays under them.
HISTORY_MIN_INTERVAL_S: Final = 6.0
HISTORY_RETRIES: Final = 3
# The time one run spends on history (the ingest function times out at 300 s): coins left over
# are deferred to the next run, with the reason.
HISTORY_BUDGET_S: Final = 180.0


class MarketChart(BaseModel):
    """The part of ``/coins/{id}/market_chart`` the backfill reads: ``[ms, cap]`` per day."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    market_caps: list[tuple[Annotated[int, Field(strict=True)], StrictNumber | None]]


def parse_market_chart(body: bytes, coin: str) -> MarketCapBatch:
    """A coin's daily caps as CoinGecko dates them (00:00 UTC, the end of the day before), the
    trailing intraday point of the request's own moment left out (the daily snapshot covers
    today). A payload that is not a market chart is one rejection of the coin with the reason;
    whether each value is a positive cap at a midnight is the domain gate's decision."""
    try:
        chart = MarketChart.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return MarketCapBatch(
            empty_market_caps(), ((coin, f"invalid_payload: market_chart {where}: {first['msg']}"),)
        )
    points = chart.market_caps
    if points and points[-1][0] % 86_400_000 != 0:
        points = points[:-1]
    frame = pl.DataFrame(
        {
            "coin": [coin] * len(points),
            "ts": [ts for ts, _ in points],
            "market_cap": [float("nan") if cap is None else float(cap) for _, cap in points],
        },
        schema=MARKET_CAP_SCHEMA,
    )
    return MarketCapBatch(frame, ())


class CoinGeckoMarketHistory:
    """Daily market-cap history per coin from ``/coins/{id}/market_chart`` (the backfill of a
    new deployment), one call per coin, throttled to ``min_interval_s`` between calls; a rate
    limit (HTTP 429) or a server error is retried with a doubling wait, then the coin is
    reported as not fetched (with the reason) and the next run tries again; once ``budget_s``
    has passed the remaining coins are deferred to the next run."""

    def __init__(
        self,
        *,
        get: Callable[[str], bytes] = _urllib_get,
        url_template: str = COINGECKO_CHART_URL,
        min_interval_s: float = HISTORY_MIN_INTERVAL_S,
        retries: int = HISTORY_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        budget_s: float = HISTORY_BUDGET_S,
    ) -> None:
        self._budget = budget_s
        self._get = get
        self._template = url_template
        self._interval = min_interval_s
        self._retries = retries
        self._sleep = sleep
        self._monotonic = monotonic
        self._last: float | None = None

    def url(self, coin: str, days: int) -> str:
        query = {"vs_currency": "usd", "days": str(days), "interval": "daily"}
        path = self._template.format(coin=urllib.parse.quote(coin, safe=""))
        return f"{path}?{urllib.parse.urlencode(query)}"

    def _throttled_get(self, url: str) -> bytes:
        wait = 0.0
        for attempt in range(self._retries + 1):
            if self._last is not None:
                wait = max(wait, self._interval - (self._monotonic() - self._last))
            if wait > 0:
                self._sleep(wait)
            self._last = self._monotonic()
            try:
                return self._get(url)
            except MarketCapSourceError as exc:
                if not exc.retryable or attempt == self._retries:
                    raise
                wait = self._interval * 2 ** (attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> MarketCapBatch:
        days = max(1, math.ceil((end - start) / timedelta(days=1)))
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        frames: list[pl.DataFrame] = []
        rejected: list[tuple[str, str]] = []
        started = self._monotonic()
        for coin in coins:
            if self._monotonic() - started > self._budget:
                rejected.append(
                    (coin, f"deferred: the run's {self._budget:g} s for history is spent")
                )
                continue
            try:
                body = self._throttled_get(self.url(coin, days))
            except MarketCapSourceError as exc:
                rejected.append((coin, f"unavailable: {exc}"))
                continue
            batch = parse_market_chart(body, coin)
            frames.append(batch.frame.filter(pl.col("ts").is_between(start_ms, end_ms)))
            rejected.extend(batch.rejected)
        frame = pl.concat(frames) if frames else empty_market_caps()
        return MarketCapBatch(frame, tuple(rejected))


# How long before a midnight the recorded 00:00 row stands in for a live observation (the 23:55
# rule's run): earlier in the day the live value would differ from the end-of-day one.
RECORDED_SNAPSHOT_LEAD_MS = 10 * 60 * 1000


class RecordedMarketCaps:
    """Market caps from the recorded CoinGecko daily CSVs (values as recorded)."""

    def __init__(self, market: RecordedMarketData) -> None:
        self._market = market

    def fetch_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> MarketCapBatch:
        daily = self._market.daily_all()
        present = set(daily["symbol"].unique().to_list())
        rejected = tuple(
            (c, f"absent: no recorded CoinGecko file {c}.csv") for c in coins if c not in present
        )
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        if day_key_ms(end_ms) - end_ms <= RECORDED_SNAPSHOT_LEAD_MS:
            end_ms = day_key_ms(end_ms)  # the end-of-day value a live fetch would key there
        frame = daily.filter(
            pl.col("symbol").is_in(list(coins)) & pl.col("ts").is_between(start_ms, end_ms)
        ).select(coin=pl.col("symbol"), ts=pl.col("ts"), market_cap=pl.col("market_cap"))
        return MarketCapBatch(frame.cast(pl.Schema(MARKET_CAP_SCHEMA)), rejected)
