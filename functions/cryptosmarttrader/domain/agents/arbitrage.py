"""Cross-exchange agent: spreads across Kraken, Binance and KuCoin net of taker fees.

Input: ``tickers`` in ``TICKER_SCHEMA`` (exchange, symbol, bid, ask, ts — one top-of-book quote
per venue and symbol, nothing after ``asof``) and a taker-fee table (venue → fraction).

A quote counts when it is valid (0 < bid <= ask) and fresh (``asof - max_quote_age_ms <= ts``).
Per symbol the agent reports

* the best cross-venue arbitrage: buy at the lowest ask, sell at the highest bid on another venue,
  ``net = bid_sell (1 - fee_sell) / (ask_buy (1 + fee_buy)) - 1`` over every ordered venue pair;
* a vote for the execution venue ``home_exchange``: when its mid lags the median mid of the other
  fresh venues by more than its own taker fee, prices tend to converge — a bullish tilt if it is
  cheaper, bearish if it is richer. ``edge`` = deviation minus the fee (0 inside the fee band),
  ``z = edge / edge_scale`` clipped to ±``z_cap``, probability = logistic(z), confidence =
  ``|z| / z_cap``. The horizon is minutes to hours.

Abstains when fewer than two venues quote the symbol freshly (naming the stale or invalid ones),
or when the execution venue itself has no fresh quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, empty_votes

AGENT = "arbitrage"

TICKER_SCHEMA: Final[dict[str, pl.DataType]] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "ts": pl.Int64(),
}

# Base-tier spot taker fees, the same numbers as domain.exchange's venue capabilities
# (Kraken Pro 0.26 %, Binance 0.10 %, KuCoin 0.10 %); pass the account's own tier when known.
DEFAULT_TAKER_FEES: Final[Mapping[str, float]] = {
    "kraken": 0.0026,
    "binance": 0.001,
    "kucoin": 0.001,
}


@dataclass(frozen=True, slots=True)
class ArbitrageConfig:
    home_exchange: str = "binance"
    max_quote_age_ms: int = 60_000
    edge_scale: float = 0.002
    z_cap: float = 2.0
    fees: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TAKER_FEES))


def _quote_status(asof_ms: int, c: ArbitrageConfig) -> pl.Expr:
    return (
        pl.when(pl.col("fee").is_null())
        .then(pl.lit("no fee known"))
        .when(
            pl.col("bid").is_null()
            | pl.col("ask").is_null()
            | ~(pl.col("bid") > 0)
            | ~(pl.col("ask") >= pl.col("bid"))
        )
        .then(pl.lit("invalid quote"))
        .when(pl.col("ts") < asof_ms - c.max_quote_age_ms)
        .then(pl.format("stale by {}s", ((asof_ms - pl.col("ts")) // 1000).cast(pl.String)))
        .otherwise(None)
    )


def arbitrage_votes(
    symbols: Sequence[str],
    asof_ms: int,
    tickers: pl.DataFrame | None,
    config: ArbitrageConfig = ArbitrageConfig(),
) -> pl.DataFrame:
    """One vote or abstention per symbol in ``symbols``."""
    if not symbols:
        return empty_votes()
    c = config
    universe = pl.DataFrame({"symbol": list(dict.fromkeys(symbols))}, schema={"symbol": pl.String})
    if tickers is None:
        tickers = pl.DataFrame(schema=TICKER_SCHEMA)
    fees = pl.DataFrame(
        {"exchange": list(c.fees), "fee": [float(v) for v in c.fees.values()]},
        schema={"exchange": pl.String, "fee": pl.Float64},
    )
    quotes = (
        tickers.filter(pl.col("ts") <= asof_ms)
        .sort("ts")
        .group_by("exchange", "symbol")
        .last()
        .join(fees, on="exchange", how="left")
        .with_columns(status=_quote_status(asof_ms, c))
        .with_columns(mid=(pl.col("bid") + pl.col("ask")) / 2)
    )
    fresh = quotes.filter(pl.col("status").is_null())
    buy = fresh.select("symbol", buy_on="exchange", ask="ask", buy_fee="fee")
    sell = fresh.select("symbol", sell_on="exchange", bid="bid", sell_fee="fee")
    best = (
        buy.join(sell, on="symbol")
        .filter(pl.col("buy_on") != pl.col("sell_on"))
        .with_columns(
            net=pl.col("bid") * (1 - pl.col("sell_fee")) / (pl.col("ask") * (1 + pl.col("buy_fee")))
            - 1
        )
        .sort("net", descending=True)
        .group_by("symbol")
        .first()
        .select("symbol", "buy_on", "sell_on", "net")
    )
    home = fresh.filter(pl.col("exchange") == c.home_exchange).select(
        "symbol", home_mid="mid", home_fee="fee", home_ts="ts"
    )
    others = (
        fresh.filter(pl.col("exchange") != c.home_exchange)
        .group_by("symbol")
        .agg(others_mid=pl.col("mid").median())
    )
    summary = quotes.group_by("symbol").agg(
        fresh=pl.col("status").is_null().sum(),
        not_used=pl.format("{} {}", "exchange", "status").filter(pl.col("status").is_not_null()),
    )
    frame = (
        universe.join(summary, on="symbol", how="left")
        .join(best, on="symbol", how="left")
        .join(home, on="symbol", how="left")
        .join(others, on="symbol", how="left")
        .with_columns(dev=pl.col("others_mid") / pl.col("home_mid") - 1)
        .with_columns(
            edge=pl.when(pl.col("dev").abs() <= pl.col("home_fee"))
            .then(0.0)
            .otherwise(pl.col("dev") - pl.col("dev").sign() * pl.col("home_fee"))
        )
        .with_columns(z=(pl.col("edge") / c.edge_scale).clip(-c.z_cap, c.z_cap))
    )
    not_used = pl.col("not_used").list.join(", ")
    abstain = (
        pl.when(pl.col("fresh").fill_null(0) < 2)
        .then(
            pl.format(
                "fewer than two venues quote it freshly ({} fresh{})",
                pl.col("fresh").fill_null(0),
                pl.when(pl.col("not_used").list.len() > 0)
                .then(pl.lit("; not used: ") + not_used)
                .otherwise(pl.lit("")),
            )
        )
        .when(pl.col("home_mid").is_null())
        .then(pl.lit(f"execution venue {c.home_exchange} has no fresh quote"))
        .otherwise(None)
    )
    reasons = pl.concat_list(
        pl.format(
            "{} mid {}% vs the other venues' median after its {}% fee",
            pl.lit(c.home_exchange),
            (-pl.col("dev") * 100).round(3).cast(pl.String),
            (pl.col("home_fee") * 100).round(3).cast(pl.String),
        ),
        pl.format(
            "best cross-venue spread net of fees {}% (buy {}, sell {})",
            (pl.col("net") * 100).round(3).cast(pl.String),
            "buy_on",
            "sell_on",
        ),
    )
    voting = pl.col("abstain_reason").is_null()
    return (
        frame.with_columns(abstain_reason=abstain)
        .select(
            "symbol",
            pl.lit(AGENT).alias("agent"),
            pl.lit(asof_ms).alias("ts"),
            pl.when(voting).then(1.0 / (1.0 + (-pl.col("z")).exp())).alias("probability"),
            pl.when(voting).then(pl.col("z").abs() / c.z_cap).alias("confidence"),
            pl.when(voting)
            .then(reasons)
            .otherwise(pl.lit([], dtype=pl.List(pl.String)))
            .alias("reasons"),
            "abstain_reason",
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol")
    )
