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

**Transfers.** An arbitrage moves the coin from the venue it is bought on to the one it is sold
on. With ``withdrawals`` (``WITHDRAWAL_SCHEMA``: per venue and symbol, whether withdrawals and
deposits of the coin are enabled, the withdrawal fee in coin units and the minimum withdrawal,
as observed at ``ts``) a route ``buy A → sell B`` counts only when A's withdrawals and B's
deposits are enabled, A's fee is known, the constraint is at most ``max_constraint_age_ms``
old and the amount bought with ``trade_notional`` reaches A's minimum; its net is

``net = (q - withdraw_fee) * bid_B (1 - fee_B) / trade_notional - 1``,
``q = trade_notional / (ask_A (1 + fee_A))``.

The vote's edge also pays the cheapest feasible route's withdrawal fee in the direction of the
deviation (into the execution venue when it is richer, out of it when it is cheaper); with no
feasible route in that direction the agent abstains and names what blocks each route (a
suspension, a minimum, a fee or a constraint not seen, with the reason the ingest stated for
a venue it could not read, ``withdrawals_missing``). Without ``withdrawals`` (``None``: the
source has no such data, e.g. recorded history) every vote states
``withdrawal constraints unknown: <why>`` and its spread is net of taker fees only (an upper
bound); no fee is ever assumed.
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


WITHDRAWAL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "exchange": pl.String(),
    "symbol": pl.String(),
    "withdraw_enabled": pl.Boolean(),
    "deposit_enabled": pl.Boolean(),
    "withdraw_fee": pl.Float64(),  # in units of the coin
    "withdraw_min": pl.Float64(),  # in units of the coin; null: the venue states none
    "ts": pl.Int64(),  # when the venue reported it
}


@dataclass(frozen=True, slots=True)
class ArbitrageConfig:
    home_exchange: str = "binance"
    max_quote_age_ms: int = 60_000
    edge_scale: float = 0.002
    z_cap: float = 2.0
    fees: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TAKER_FEES))
    trade_notional: float = 1_000.0  # quote spent per route: prices the withdrawal fee
    max_constraint_age_ms: int = 2 * 86_400_000  # withdrawal data older than this is unseen


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


def _routes(
    fresh: pl.DataFrame,
    withdrawals: pl.DataFrame | None,
    asof_ms: int,
    c: ArbitrageConfig,
    missing: Mapping[str, str],
) -> pl.DataFrame:
    """Every ordered venue pair of a symbol with fresh quotes: its net and, when withdrawal
    data is given, ``blocked`` (why coins cannot move that way, null when they can) and
    ``wfee_frac`` (the withdrawal fee as a fraction of the notional)."""
    buy = fresh.select("symbol", buy_on="exchange", ask="ask", buy_fee="fee")
    sell = fresh.select("symbol", sell_on="exchange", bid="bid", sell_fee="fee")
    routes = buy.join(sell, on="symbol").filter(pl.col("buy_on") != pl.col("sell_on"))
    if withdrawals is None:
        return routes.with_columns(
            net=pl.col("bid") * (1 - pl.col("sell_fee")) / (pl.col("ask") * (1 + pl.col("buy_fee")))
            - 1,
            blocked=pl.lit(None, dtype=pl.String),
            wfee_frac=pl.lit(0.0),
        )
    w = withdrawals.filter(pl.col("ts") <= asof_ms).sort("ts").group_by("exchange", "symbol").last()
    out_of = w.select(
        "symbol",
        buy_on="exchange",
        w_enabled="withdraw_enabled",
        w_fee="withdraw_fee",
        w_min="withdraw_min",
        w_ts="ts",
    )
    into = w.select("symbol", sell_on="exchange", d_enabled="deposit_enabled", d_ts="ts")
    why = pl.DataFrame(
        {"venue": list(missing), "why": list(missing.values())},
        schema={"venue": pl.String, "why": pl.String},
    )
    out_why = why.select(buy_on="venue", out_missing="why")
    in_why = why.select(sell_on="venue", in_missing="why")
    oldest = asof_ms - c.max_constraint_age_ms
    qty = c.trade_notional / (pl.col("ask") * (1 + pl.col("buy_fee")))
    blocked = (
        pl.when(pl.col("w_ts").is_null() & pl.col("out_missing").is_not_null())
        .then("out_missing")
        .when(pl.col("w_ts").is_null())
        .then(pl.format("no withdrawal data for {}", "buy_on"))
        .when(pl.col("w_ts") < oldest)
        .then(pl.format("withdrawal data of {} is stale", "buy_on"))
        .when(pl.col("w_enabled").is_null())
        .then(pl.format("{} does not say whether withdrawals are enabled", "buy_on"))
        .when(~pl.col("w_enabled"))
        .then(pl.format("withdrawals suspended on {}", "buy_on"))
        .when(pl.col("w_fee").is_null())
        .then(pl.format("{} reports no withdrawal fee", "buy_on"))
        .when(pl.col("d_ts").is_null() & pl.col("in_missing").is_not_null())
        .then("in_missing")
        .when(pl.col("d_ts").is_null() | (pl.col("d_ts") < oldest))
        .then(pl.format("no current deposit data for {}", "sell_on"))
        .when(pl.col("d_enabled").is_null())
        .then(pl.format("{} does not say whether deposits are enabled", "sell_on"))
        .when(~pl.col("d_enabled"))
        .then(pl.format("deposits suspended on {}", "sell_on"))
        .when(pl.col("w_min").is_not_null() & (qty < pl.col("w_min")))
        .then(pl.format("below {}'s minimum withdrawal {}", "buy_on", "w_min"))
        .when(qty <= pl.col("w_fee"))
        .then(pl.format("{}'s withdrawal fee exceeds the amount", "buy_on"))
        .otherwise(None)
    )
    return (
        routes.join(out_of, on=["symbol", "buy_on"], how="left")
        .join(into, on=["symbol", "sell_on"], how="left")
        .join(out_why, on="buy_on", how="left")
        .join(in_why, on="sell_on", how="left")
        .with_columns(blocked=blocked)
        .with_columns(
            net=pl.when(pl.col("blocked").is_null()).then(
                (qty - pl.col("w_fee"))
                * pl.col("bid")
                * (1 - pl.col("sell_fee"))
                / c.trade_notional
                - 1
            ),
            wfee_frac=pl.col("w_fee") * pl.col("ask") / c.trade_notional,
        )
    )


def arbitrage_votes(
    symbols: Sequence[str],
    asof_ms: int,
    tickers: pl.DataFrame | None,
    config: ArbitrageConfig = ArbitrageConfig(),
    withdrawals: pl.DataFrame | None = None,
    withdrawals_unavailable: str | None = None,
    withdrawals_missing: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """One vote or abstention per symbol in ``symbols``. ``withdrawals`` (``WITHDRAWAL_SCHEMA``)
    makes every route pay its transfer; ``None`` means the source has none, and every vote says
    so with ``withdrawals_unavailable``. ``withdrawals_missing`` (venue → why its constraints
    could not be read, e.g. no read-only keys for a venue that serves them to signed requests
    only) names that reason on each route through the venue that has no constraint."""
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
    routes = _routes(fresh, withdrawals, asof_ms, c, withdrawals_missing or {})
    feasible = routes.filter(pl.col("blocked").is_null())
    best = (
        feasible.sort("net", descending=True)
        .group_by("symbol")
        .first()
        .select("symbol", "buy_on", "sell_on", "net")
    )
    home_name = pl.lit(c.home_exchange)
    # the transfer that would close a deviation: out of the execution venue when it is
    # cheaper (others' median above it), into it when it is richer
    outward = (
        routes.filter(pl.col("buy_on") == home_name)
        .group_by("symbol")
        .agg(
            out_frac=pl.col("wfee_frac").filter(pl.col("blocked").is_null()).min(),
            out_why=pl.format("{}→{}: {}", "buy_on", "sell_on", "blocked")
            .filter(pl.col("blocked").is_not_null())
            .sort(),
        )
    )
    inward = (
        routes.filter(pl.col("sell_on") == home_name)
        .group_by("symbol")
        .agg(
            in_frac=pl.col("wfee_frac").filter(pl.col("blocked").is_null()).min(),
            in_why=pl.format("{}→{}: {}", "buy_on", "sell_on", "blocked")
            .filter(pl.col("blocked").is_not_null())
            .sort(),
        )
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
        .join(outward, on="symbol", how="left")
        .join(inward, on="symbol", how="left")
        .with_columns(dev=pl.col("others_mid") / pl.col("home_mid") - 1)
        .with_columns(
            transfer=pl.when(pl.col("dev") >= 0).then("out_frac").otherwise("in_frac"),
            transfer_why=pl.when(pl.col("dev") >= 0).then("out_why").otherwise("in_why"),
        )
        .with_columns(cost=pl.col("home_fee") + pl.col("transfer"))
        .with_columns(
            edge=pl.when(pl.col("dev").abs() <= pl.col("cost"))
            .then(0.0)
            .otherwise(pl.col("dev") - pl.col("dev").sign() * pl.col("cost"))
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
        .when(pl.col("transfer").is_null())
        .then(
            pl.format(
                "no transfer route {} {} is open ({})",
                pl.when(pl.col("dev") >= 0).then(pl.lit("out of")).otherwise(pl.lit("into")),
                home_name,
                pl.col("transfer_why").list.join("; "),
            )
        )
        .otherwise(None)
    )
    if withdrawals is None:
        unknown = withdrawals_unavailable or "the source reports no withdrawal data"
        cost_text = pl.format("its {}% taker fee", (pl.col("home_fee") * 100).round(3))
        spread = "best cross-venue spread net of taker fees {}% (buy {}, sell {}; an upper bound)"
        caveat = [pl.lit(f"withdrawal constraints unknown: {unknown}")]
    else:
        cost_text = pl.format(
            "its {}% taker fee and {}% withdrawal fee",
            (pl.col("home_fee") * 100).round(3),
            (pl.col("transfer") * 100).round(4),
        )
        spread = "best cross-venue spread net of fees and withdrawal {}% (buy {}, sell {})"
        caveat = []
    reasons = pl.concat_list(
        pl.format(
            "{} mid {}% vs the other venues' median after {}",
            pl.lit(c.home_exchange),
            (-pl.col("dev") * 100).round(3).cast(pl.String),
            cost_text,
        ),
        pl.when(pl.col("net").is_not_null())
        .then(
            pl.format(spread, (pl.col("net") * 100).round(3).cast(pl.String), "buy_on", "sell_on")
        )
        .otherwise(pl.lit("no open route for a full arbitrage")),
        *caveat,
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
