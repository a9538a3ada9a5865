"""Early-mover scout: small caps whose volume, market cap and price start to outrun the market.

The product's goal is to find coins that can gain 100 %–500 % within 180 days. Such moves start
in small and new coins with attention (volume) and money (market cap) flowing in faster than
before, and with price strength against the rest of the market. The scout measures exactly that,
vectorized over the universe, on daily bars (``DAILY_SCHEMA``, nothing after ``asof``):

* ``volume acceleration`` — mean volume of the last 7 days over the mean of the 28 days before;
* ``market-cap acceleration`` — 30-day log growth of market cap minus the 30-day growth before it;
* ``relative strength`` — the coin's 30-day return minus the universe median 30-day return;
* ``new listing`` — first bar in the data within ``new_listing_days`` of ``asof`` (only known for
  coins whose first bar is later than the first bar of the frame; otherwise unknown, never
  assumed).

Each measured signal becomes its cross-sectional percentile among the coins that have it (0..1).
``score`` is their mean minus 0.5 plus a ``listing_bonus`` for new listings; ``probability`` =
logistic(``slope`` · score) is a heuristic P(up over 180 days) — calibration against the 100 % /
500 % targets is the ensemble's job. ``confidence`` = agreement (2·|score|, capped at 1) ·
coverage (signals measured / 3).

Scope and abstentions: the largest ``exclude_top`` coins by market cap are outside the scout's
scope (they cannot multiply like a small cap); coins without a bar or a positive market cap at
``asof``, with fewer than ``min_history`` bars, or with none of the signals measurable abstain
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, empty_votes
from cryptosmarttrader.domain.market import DAY_MS

AGENT = "early_mover"
SIGNALS = ("p_size", "p_volume", "p_mcap", "p_rs")


@dataclass(frozen=True, slots=True)
class EarlyMoverConfig:
    exclude_top: int = 20  # largest coins by market cap are out of scope
    min_history: int = 35  # bars needed for the 7-vs-28-day volume window
    new_listing_days: int = 90
    listing_bonus: float = 0.1
    slope: float = 4.0
    # weights of (smallness, volume accel, market-cap accel, relative strength); see the docs for
    # the real-data measurement behind them
    weights: tuple[float, float, float, float] = (0.4, 0.2, 0.2, 0.2)


def _pct_rank(name: str) -> pl.Expr:
    """Cross-sectional percentile (0..1) among coins where ``name`` is defined; null elsewhere."""
    col = pl.col(name)
    n = col.count()
    return pl.when(col.is_not_null() & (n > 1)).then((col.rank("average") - 1) / (n - 1))


def series_features(frame: pl.DataFrame, by: str = "symbol") -> pl.DataFrame:
    """Per-bar inputs of the scout for every series (``by``: a symbol or a symbol's segment),
    each bar reading only itself and the bars before it in its series: ``first_ts`` (the
    series' first bar), ``n_bars`` (bars so far), the volume, market-cap and return windows."""
    vol, cap, close = pl.col("volume"), pl.col("market_cap"), pl.col("close")
    pos_vol = pl.when(vol > 0).then(vol)
    pos_cap = pl.when(cap > 0).then(cap)
    return frame.sort(by, "ts").with_columns(
        first_ts=pl.col("ts").min().over(by),
        n_bars=pl.int_range(1, pl.len() + 1).over(by),
        span_ok=((pl.col("ts") - pl.col("ts").shift(60)) == 60 * DAY_MS).over(by),
        vol_recent=pos_vol.rolling_mean(7).over(by),
        vol_before=pos_vol.shift(7).rolling_mean(28).over(by),
        cap_growth=(pos_cap / pos_cap.shift(30)).log().over(by),
        cap_growth_before=(pos_cap.shift(30) / pos_cap.shift(60)).log().over(by),
        ret30=(close / close.shift(30) - 1).over(by),
    )


def cross_section(
    last: pl.DataFrame, asof: pl.Expr, frame_start: pl.Expr, day: str | None = None
) -> pl.DataFrame:
    """The scout's features from :func:`series_features` rows (each a symbol's last bar up to
    its as-of ``asof``, ms): the relative strength and the market-cap rank are taken among the
    rows of one as-of (``day`` names the column grouping several as-ofs; None: one as-of).
    ``frame_start`` is the first bar of the data the series were read from: a series starting
    after it has a known listing day."""

    def per(expr: pl.Expr) -> pl.Expr:
        return expr if day is None else expr.over(day)

    current = pl.col("ts") >= asof - asof % DAY_MS  # has the as-of day's bar
    return last.with_columns(
        volume_accel=pl.col("vol_recent") / pl.col("vol_before"),
        mcap_accel=pl.when(pl.col("span_ok")).then(
            pl.col("cap_growth") - pl.col("cap_growth_before")
        ),
        rel_strength=pl.col("ret30") - per(pl.when(current).then(pl.col("ret30")).median()),
        smallness=-pl.col("market_cap").log(),
        age_days=(asof - pl.col("first_ts")) // DAY_MS,
        listing_known=pl.col("first_ts") > frame_start,
        cap_rank=per(
            pl.when(current & (pl.col("market_cap") > 0))
            .then(pl.col("market_cap"))
            .rank("ordinal", descending=True)
        ),
    )


def early_mover_features(frame: pl.DataFrame, asof_ms: int) -> pl.DataFrame:
    """Per-coin features on the bar at ``asof_ms`` (one row per symbol present in ``frame``)."""
    frame = frame.filter(pl.col("ts") <= asof_ms)
    frame_start = frame["ts"].min()
    last = series_features(frame).group_by("symbol").last()
    return cross_section(last, pl.lit(asof_ms), pl.lit(frame_start)).sort("symbol")


def early_mover_votes(
    frame: pl.DataFrame, asof_ms: int, config: EarlyMoverConfig = EarlyMoverConfig()
) -> pl.DataFrame:
    """Votes for the bar at ``asof_ms`` (start of a UTC day); one row per symbol."""
    if frame.is_empty():
        return empty_votes()
    day_start = asof_ms - asof_ms % DAY_MS
    feats = early_mover_features(frame, asof_ms)
    return votes_from_features(feats, pl.lit(day_start), config).sort("symbol")


def votes_from_features(
    feats: pl.DataFrame,
    day_start: pl.Expr,
    config: EarlyMoverConfig = EarlyMoverConfig(),
    day: str | None = None,
) -> pl.DataFrame:
    """Votes from :func:`cross_section` rows; the percentiles are taken among the rows of one
    as-of (``day`` names the column grouping several as-ofs, and is kept; None: one as-of)."""
    c = config

    def per(expr: pl.Expr) -> pl.Expr:
        return expr if day is None else expr.over(day)

    at_day = (pl.col("ts") >= day_start) & (pl.col("market_cap") > 0)
    in_scope = at_day & (pl.col("cap_rank") > c.exclude_top) & (pl.col("n_bars") >= c.min_history)
    ranked = feats.with_columns(
        # percentiles are taken among the coins the scout votes on
        *[
            pl.when(in_scope).then(pl.col(src)).alias(dst)
            for src, dst in (
                ("smallness", "p_size"),
                ("volume_accel", "p_volume"),
                ("mcap_accel", "p_mcap"),
                ("rel_strength", "p_rs"),
            )
        ]
    ).with_columns(*[per(_pct_rank(s)).alias(s) for s in SIGNALS])
    measured = pl.sum_horizontal(pl.col(s).is_not_null().cast(pl.Int32) for s in SIGNALS)
    new_listing = pl.col("listing_known") & (pl.col("age_days") <= c.new_listing_days)
    weight = [
        pl.when(pl.col(n).is_not_null()).then(w).otherwise(0.0)
        for n, w in zip(SIGNALS, c.weights, strict=True)
    ]
    weighted = pl.sum_horizontal(
        pl.col(n).fill_null(0.0) * w for n, w in zip(SIGNALS, c.weights, strict=True)
    ) / pl.sum_horizontal(weight)
    bonus = pl.when(new_listing).then(c.listing_bonus).otherwise(0.0)
    score = weighted - 0.5 + bonus
    scored = ranked.with_columns(measured=measured, new_listing=new_listing).with_columns(
        score=score
    )
    abstain = (
        pl.when(pl.col("ts") < day_start)
        .then(
            pl.format(
                "no bar at the as-of date (last bar {})",
                pl.from_epoch("ts", time_unit="ms").dt.strftime("%Y-%m-%d"),
            )
        )
        .when(~(pl.col("market_cap") > 0).fill_null(False))
        .then(pl.lit("market cap unknown at the as-of date: size cannot be judged"))
        .when(pl.col("cap_rank") <= c.exclude_top)
        .then(
            pl.format(
                "large cap (rank {} by market cap ≤ {}): outside the early-mover scope",
                "cap_rank",
                pl.lit(c.exclude_top),
            )
        )
        .when(pl.col("n_bars") < c.min_history)
        .then(pl.format("too new to measure: {} daily bars < {}", "n_bars", pl.lit(c.min_history)))
        .when(pl.col("measured") == 0)
        .then(pl.lit("no early-mover signal measurable (volume or market cap missing)"))
        .otherwise(None)
    )

    def pct(name: str) -> pl.Expr:
        return (
            pl.when(pl.col(name).is_not_null())
            .then((pl.col(name) * 100).round(0).cast(pl.Int64).cast(pl.String))
            .otherwise(pl.lit("n/a"))
        )

    reasons = pl.concat_list(
        pl.format("market-cap rank {} (smallness pctl {})", "cap_rank", pct("p_size")),
        pl.format(
            "volume 7d/28d ×{} (pctl {})",
            pl.col("volume_accel").round(2).cast(pl.String).fill_null("n/a"),
            pct("p_volume"),
        ),
        pl.format(
            "market-cap acceleration {} (pctl {})",
            pl.col("mcap_accel").round(3).cast(pl.String).fill_null("n/a"),
            pct("p_mcap"),
        ),
        pl.format(
            "30d return vs universe median {}% (pctl {})",
            (pl.col("rel_strength") * 100).round(1).cast(pl.String).fill_null("n/a"),
            pct("p_rs"),
        ),
        pl.when(pl.col("new_listing"))
        .then(pl.format("new listing: first seen {} days ago", "age_days"))
        .when(pl.col("listing_known"))
        .then(pl.format("listed {} days ago", "age_days"))
        .otherwise(pl.lit("listing age unknown (present since the frame starts)")),
    )
    voting = pl.col("abstain_reason").is_null()
    return (
        scored.with_columns(abstain_reason=abstain)
        .select(
            *(() if day is None else (day,)),
            "symbol",
            pl.lit(AGENT).alias("agent"),
            "ts",
            pl.when(voting)
            .then(1.0 / (1.0 + (-c.slope * pl.col("score")).exp()))
            .alias("probability"),
            pl.when(voting)
            .then(
                (2 * pl.col("score").abs()).clip(upper_bound=1.0)
                * pl.col("measured")
                / len(SIGNALS)
            )
            .alias("confidence"),
            pl.when(voting)
            .then(reasons)
            .otherwise(pl.lit([], dtype=pl.List(pl.String)))
            .alias("reasons"),
            "abstain_reason",
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
    )
