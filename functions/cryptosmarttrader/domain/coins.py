"""Which CoinGecko coin an exchange pair trades, and the market caps joined to exchange bars.

Exchange candles carry no market cap; CoinGecko does. The link is an explicit table of
exchange base tickers (ccxt unified, e.g. ``BTC`` of ``BTC/USDT``) to CoinGecko coin ids, never a
guess from the ticker alone: tickers are not unique (in the recorded CoinGecko list ``ETH`` is also
``bridged-wrapped-ether-starkgate``, ``SOL`` also ``wrapped-solana`` and ``binance-peg-sol``,
``DOGE`` also ``binance-peg-dogecoin``, ``AVAX`` also ``binance-peg-avalanche``). A pair is
rejected, with the reason, when its base is not in the table (the reason lists the coins that
carry that ticker, if a coin list is given, so an operator can add the right one), when the
table marks the ticker ambiguous, or when an earlier pair already stands for the same coin (one
coin must not count twice in the cross-sectional features).

Market caps are daily values keyed by ``ts``: the UTC midnight at which the value is known.
A CoinGecko daily snapshot taken at D 00:00 is keyed D; a live value observed at 23:55 on D is
keyed D+1 (the next midnight: the first daily close at which it was known), so a join on
``ts`` never uses a value observed after the bar it is joined to. :func:`check_market_caps` is
the gate: rows without a positive finite cap, off-midnight keys, future keys and conflicting
duplicates are rejected with a reason; nothing is filled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from cryptosmarttrader.domain.market import DAY_MS

__all__ = [
    "AMBIGUOUS_BASES",
    "COINGECKO_IDS",
    "MARKET_CAP_SCHEMA",
    "CoinResolution",
    "MarketCapBatch",
    "MarketCapCheck",
    "MarketCapSourceError",
    "check_market_caps",
    "day_key_ms",
    "empty_market_caps",
    "resolve_pairs",
]

MARKET_CAP_SCHEMA: Final[dict[str, pl.DataType]] = {
    "coin": pl.String(),
    "ts": pl.Int64(),
    "market_cap": pl.Float64(),
}

# Base ticker (ccxt unified) → CoinGecko coin id. Covers the recorded Binance spot pairs and the
# default ingest schedules. FTM and FTT are listed although the recorded CoinGecko set has no file
# for them (fantom was renamed, ftx-token died before the list was drawn): they stay ineligible
# for lack of market caps, never filled.
COINGECKO_IDS: Final[Mapping[str, str]] = {
    "AAVE": "aave",
    "ADA": "cardano",
    "ALGO": "algorand",
    "APE": "apecoin",
    "ATOM": "cosmos",
    "AVAX": "avalanche-2",
    "BCH": "bitcoin-cash",
    "BNB": "binancecoin",
    "BTC": "bitcoin",
    "CHZ": "chiliz",
    "DOGE": "dogecoin",
    "DOT": "polkadot",
    "EGLD": "elrond-erd-2",
    "EOS": "eos",
    "ETC": "ethereum-classic",
    "ETH": "ethereum",
    "FLOW": "flow",
    "FTM": "fantom",
    "FTT": "ftx-token",
    "KCS": "kucoin-shares",
    "LINK": "chainlink",
    "LTC": "litecoin",
    "MANA": "decentraland",
    "MATIC": "matic-network",
    "NEAR": "near",
    "SAND": "the-sandbox",
    "SOL": "solana",
    "THETA": "theta-token",
    "TRX": "tron",
    "VET": "vechain",
    "XLM": "stellar",
    "XMR": "monero",
    "XRP": "ripple",
    "XTZ": "tezos",
}

# Tickers that named different coins over time on the exchanges: no single id is right.
AMBIGUOUS_BASES: Final[Mapping[str, str]] = {
    "LUNA": (
        "LUNA named Terra (terra-luna, now LUNC) until May 2022 and Terra 2.0 (terra-luna-2) "
        "after: one ticker, two coins"
    ),
}


@dataclass(frozen=True)
class CoinResolution:
    """Pairs with their CoinGecko coin, and the pairs left out with the reason."""

    coins: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def resolve_pairs(
    pairs: Iterable[str],
    *,
    table: Mapping[str, str] = COINGECKO_IDS,
    coin_symbols: Mapping[str, str] | None = None,
) -> CoinResolution:
    """Map ``BASE/QUOTE`` pairs to coin ids through ``table`` (explicit only).

    ``coin_symbols`` (coin id → ticker, e.g. CoinGecko's coin list) only enriches the reason of a
    rejection; it never maps a pair by itself. Pairs are taken in sorted order, so which of two
    pairs of one coin is kept does not depend on the caller's order.
    """
    out = CoinResolution()
    by_coin: dict[str, str] = {}
    for pair in sorted(set(pairs)):
        base, sep, quote = pair.partition("/")
        base = base.upper()
        if not (sep and base and quote):
            out.rejected[pair] = f"{pair!r} is not an exchange pair BASE/QUOTE"
            continue
        if base in AMBIGUOUS_BASES:
            out.rejected[pair] = f"ambiguous ticker {base}: {AMBIGUOUS_BASES[base]}"
            continue
        coin = table.get(base)
        if coin is None:
            out.rejected[pair] = _unmapped_reason(base, coin_symbols)
            continue
        if coin in by_coin:
            out.rejected[pair] = f"{coin} is already represented by {by_coin[coin]}"
            continue
        by_coin[coin] = pair
        out.coins[pair] = coin
    return out


def _unmapped_reason(base: str, coin_symbols: Mapping[str, str] | None) -> str:
    reason = f"no explicit CoinGecko id for ticker {base}"
    if coin_symbols is None:
        return reason
    candidates = sorted(c for c, s in coin_symbols.items() if s.upper() == base)
    if len(candidates) > 1:
        return f"{reason}: ambiguous, {len(candidates)} coins carry it ({', '.join(candidates)})"
    if candidates:
        return f"{reason}: the coin list names {candidates[0]}; add it to the table to use it"
    return f"{reason}: no coin in the coin list carries it"


def day_key_ms(observed_ms: int) -> int:
    """The UTC midnight at which a value observed at ``observed_ms`` is known (ceiling)."""
    return -(-observed_ms // DAY_MS) * DAY_MS


def empty_market_caps() -> pl.DataFrame:
    return pl.DataFrame(schema=MARKET_CAP_SCHEMA)


class MarketCapSourceError(RuntimeError):
    """A market-cap source answered nothing usable (HTTP error, not a list); says why."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class MarketCapBatch:
    """Rows from a source (``MARKET_CAP_SCHEMA``, not yet gated) and the rows it could not
    read, as (coin or ``#index``, reason)."""

    frame: pl.DataFrame
    rejected: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MarketCapCheck:
    """Clean rows (``MARKET_CAP_SCHEMA``, sorted by coin, ts) and rejections (coin, ts, reason)."""

    clean: pl.DataFrame
    rejected: tuple[tuple[str, int | None, str], ...]


def check_market_caps(
    frame: pl.DataFrame, now_ms: int, coins: Sequence[str] | None = None
) -> MarketCapCheck:
    """Gate daily market caps: every row kept is a positive finite cap of a requested coin,
    keyed at a UTC midnight no later than the one at which a value observed at ``now_ms`` is
    known (``day_key_ms(now_ms)``: a cap observed at 23:55 is keyed at the coming midnight, and
    a scan after that midnight reads it), unique per (coin, ts)."""
    missing = [c for c in MARKET_CAP_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"market-cap frame lacks columns {missing}")
    rows = frame.select(list(MARKET_CAP_SCHEMA)).cast(pl.Schema(MARKET_CAP_SCHEMA))
    wanted = set(coins) if coins is not None else None
    rejected: list[tuple[str, int | None, str]] = []
    keep: list[bool] = []
    counts = rows.group_by("coin", "ts").len()
    dup = {(c, t) for c, t, n in counts.iter_rows() if n > 1}
    for coin, ts, cap in rows.iter_rows():
        reason = _row_reason(coin, ts, cap, now_ms, wanted, dup)
        keep.append(reason is None)
        if reason is not None:
            rejected.append((str(coin), ts, reason))
    clean = rows.filter(pl.Series(keep, dtype=pl.Boolean)).sort("coin", "ts")
    return MarketCapCheck(clean, tuple(rejected))


def _row_reason(
    coin: str | None,
    ts: int | None,
    cap: float | None,
    now_ms: int,
    wanted: set[str] | None,
    dup: set[tuple[str | None, int | None]],
) -> str | None:
    if not coin:
        return "no_coin: row without a coin id"
    if wanted is not None and coin not in wanted:
        return f"unrequested: {coin} was not asked for"
    if ts is None:
        return "no_time: row without a timestamp"
    if ts % DAY_MS:
        return f"off_midnight: key {ts} is not a UTC midnight"
    if ts > day_key_ms(now_ms):
        return f"future: keyed {ts}, after the midnight {day_key_ms(now_ms)} known at {now_ms}"
    if cap is None or math.isnan(cap):
        return "missing_cap: no market cap reported"
    if not math.isfinite(cap) or cap <= 0:
        return f"non_positive_cap: market cap {cap} is not a positive finite number"
    if (coin, ts) in dup:
        return f"duplicate: several rows for {coin} at {ts}"
    return None
