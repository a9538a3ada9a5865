"""Technical agent: momentum, trend, oscillator and volume signals, vectorized over the universe.

Input: daily bars in ``DAILY_SCHEMA`` that passed the data-quality gate, nothing after ``asof``.
Output: one vote or abstention per symbol in ``VOTE_SCHEMA``.

The agent counts seven sub-signals, each bullish (+1), bearish (-1) or neutral (0):
30-day and 90-day momentum, close vs SMA50, SMA50 vs SMA200, MACD histogram, RSI(14) zone and a
volume surge in the direction of the 7-day move. ``confidence`` is their agreement
(|sum| / 7) scaled by history sufficiency; ``probability`` squashes the net signal plus the
volatility-adjusted 90-day log momentum (tanh of a Sharpe-like ratio / 3) through a logistic. It is a heuristic, not a calibrated
probability: calibration is the ensemble's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cryptosmarttrader.domain import indicators as ind
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.market import DAY_MS

AGENT = "technical"
N_SIGNALS = 7


@dataclass(frozen=True, slots=True)
class TechnicalConfig:
    min_history: int = 60  # bars needed before the agent votes at all
    full_history: int = 200  # bars at which confidence is no longer discounted
    neutral_return: float = 0.02  # |return| below this is neither up nor down
    volume_surge: float = 1.5  # 7d / 30d mean volume ratio counted as a surge
    rsi_overbought: float = 80.0
    rsi_oversold: float = 30.0
    net_weight: float = 2.0
    momentum_weight: float = 0.5


# computed together: the symbol groups are found once, each symbol is one TA-Lib call per indicator
INDICATORS: tuple[ind.Indicator, ...] = (
    ind.Macd("close", 12, 26, 9, "macd"),
    ind.Rsi("close", 14, "rsi"),
    ind.Sma("close", 50, "sma50"),
    ind.Sma("close", 200, "sma200"),
    ind.Sma("volume", 7, "vol7"),
    ind.Sma("volume", 30, "vol30"),
)


def _sign(expr: pl.Expr, neutral: float) -> pl.Expr:
    return pl.when(expr > neutral).then(1).when(expr < -neutral).then(-1).otherwise(0)


def _pct(name: str) -> pl.Expr:
    return (pl.col(name) * 100).round(1).cast(pl.String)


def indicator_frame(frame: pl.DataFrame, by: str = "symbol") -> pl.DataFrame:
    """Per-bar indicators for every series (rolling windows never cross series; ``by`` names
    the series, a symbol or a symbol's segment). Each bar's values read only that bar and the
    bars before it in its series.

    SMA, MACD and RSI come from :mod:`cryptosmarttrader.domain.indicators` (TA-Lib definitions).
    """
    close = pl.col("close")
    frame = ind.add_indicators(frame.sort([by, "ts"]), *INDICATORS, by=by)
    return frame.with_columns(
        logret=ind.log_return(close, by=by),
        ret7=(close / close.shift(7) - 1).over(by),
        ret30=(close / close.shift(30) - 1).over(by),
        ret90=(close / close.shift(90) - 1).over(by),
        span90_ok=((pl.col("ts") - pl.col("ts").shift(90)) == 90 * DAY_MS).over(by),
        n_bars=pl.int_range(1, pl.len() + 1).over(by),
    ).with_columns(volatility=pl.col("logret").rolling_std(30).over(by))


def technical_votes(
    frame: pl.DataFrame, asof_ms: int, config: TechnicalConfig = TechnicalConfig()
) -> pl.DataFrame:
    """Votes for the bar at ``asof_ms`` (start of the UTC day). Abstains with a reason per coin."""
    if frame.is_empty():
        return pl.DataFrame(schema=VOTE_SCHEMA)
    day_start = asof_ms - asof_ms % DAY_MS
    last = indicator_frame(frame.filter(pl.col("ts") <= asof_ms)).group_by("symbol").last()
    return votes_from_indicators(last, pl.lit(day_start), config).sort("symbol")


def votes_from_indicators(
    last: pl.DataFrame,
    day_start: pl.Expr,
    config: TechnicalConfig = TechnicalConfig(),
    keep: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Votes from rows of :func:`indicator_frame` (each the last bar of a symbol up to its as-of;
    ``day_start`` is the start of the as-of's UTC day, per row or for all); ``keep`` columns are
    carried through (an evaluation's decision ``day``). Row-wise: no row reads another."""
    c = config
    signals = [
        _sign(pl.col("ret30"), c.neutral_return),
        _sign(pl.col("ret90"), c.neutral_return),
        pl.when(pl.col("close") > pl.col("sma50")).then(1).otherwise(-1),
        pl.when(pl.col("sma200").is_null())
        .then(0)
        .when(pl.col("sma50") > pl.col("sma200"))
        .then(1)
        .otherwise(-1),
        pl.when(pl.col("macd_hist") > 0).then(1).otherwise(-1),
        pl.when(pl.col("rsi") >= c.rsi_overbought)
        .then(-1)
        .when(pl.col("rsi") > 50)
        .then(1)
        .when(pl.col("rsi") >= c.rsi_oversold)
        .then(-1)
        .otherwise(0),
        pl.when((pl.col("vol30") > 0) & (pl.col("vol7") / pl.col("vol30") >= c.volume_surge))
        .then(_sign(pl.col("ret7"), 0.0))
        .otherwise(0),
    ]
    scored = last.with_columns(net=pl.sum_horizontal(signals)).with_columns(
        risk_adj_mom=(
            (1 + pl.col("ret90")).log()
            / (3 * pl.col("volatility") * 90**0.5).clip(lower_bound=1e-9)
        ).tanh(),
        sufficiency=(pl.col("n_bars") / c.full_history).clip(upper_bound=1.0),
    )
    abstain = (
        pl.when(pl.col("ts") < day_start)
        .then(
            pl.format(
                "no bar at the as-of date (last bar {})",
                pl.from_epoch("ts", time_unit="ms").dt.strftime("%Y-%m-%d"),
            )
        )
        .when(pl.col("n_bars") < c.min_history)
        .then(
            pl.format("insufficient history: {} daily bars < {}", "n_bars", pl.lit(c.min_history))
        )
        .when(pl.col("span90_ok").is_null())
        .then(pl.format("insufficient history for 90-day momentum: {} daily bars < 91", "n_bars"))
        .when(~pl.col("span90_ok"))
        .then(pl.lit("gap in the last 90 days: momentum cannot be measured"))
        .when(
            pl.col("volatility").is_null()
            | pl.col("rsi").is_null()
            | ~pl.col("risk_adj_mom").is_finite().fill_null(False)
        )
        .then(pl.lit("indicators undefined on this history"))
        .otherwise(None)
    )
    z = c.net_weight * pl.col("net") / N_SIGNALS + c.momentum_weight * pl.col("risk_adj_mom")
    reasons = pl.concat_list(
        pl.format("30d return {}%", _pct("ret30")),
        pl.format("90d return {}%", _pct("ret90")),
        pl.format("RSI14 {}", pl.col("rsi").round(1).cast(pl.String)),
        pl.when(pl.col("close") > pl.col("sma50"))
        .then(pl.lit("close above SMA50"))
        .otherwise(pl.lit("close below SMA50")),
        pl.format("{}/{} technical signals agree", pl.col("net").abs(), pl.lit(N_SIGNALS)),
    )
    return (
        scored.with_columns(abstain_reason=abstain)
        .select(
            *keep,
            "symbol",
            pl.lit(AGENT).alias("agent"),
            "ts",
            pl.when(pl.col("abstain_reason").is_null())
            .then(1.0 / (1.0 + (-z).exp()))
            .alias("probability"),
            pl.when(pl.col("abstain_reason").is_null())
            .then(pl.col("net").abs() / N_SIGNALS * pl.col("sufficiency"))
            .alias("confidence"),
            pl.when(pl.col("abstain_reason").is_null())
            .then(reasons)
            .otherwise(pl.lit([], dtype=pl.List(pl.String)))
            .alias("reasons"),
            "abstain_reason",
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
    )
