"""Point-in-time universe: which coins were in the top N by market cap on a decision day.

The membership comes from monthly snapshots (CoinMarketCap's top 200 on the 1st of each month,
including coins that later collapsed or were delisted). A snapshot dated ``D`` was taken at the
**end** of day ``D`` (its prices match the 00:00 UTC row of ``D + 1``), so it may be used by a
decision on day ``D + 1`` or later, never on ``D`` itself.

A member without a price series (no CoinGecko id) is still a member: it cannot be ranked, and
the evaluation counts it as a miss (lower bound) or leaves it out (upper bound). Having data is
never a signal: every ranker is judged on the same rows.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from cryptosmarttrader.domain.types import DomainError

__all__ = ["PIT_SCHEMA", "members_on", "snapshot_days"]

PIT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "snapshot_day": pl.Int64(),  # days since epoch of the snapshot date (taken at its end)
    "cmc_rank": pl.Int64(),
    "cmc_symbol": pl.String(),
    "market_cap_usd": pl.Float64(),
    "volume_24h_usd": pl.Float64(),
    "coingecko_id": pl.String(),  # null: no price series for this member
}

USABLE_AFTER_DAYS: Final = 1  # a snapshot of day D is known from D + 1 00:00 UTC


def snapshot_days(pit: pl.DataFrame) -> list[int]:
    return sorted(pit["snapshot_day"].unique().to_list())


def members_on(pit: pl.DataFrame, days: list[int], top_n: int) -> pl.DataFrame:
    """Members on each decision day: the latest snapshot usable that day, ranks ``<= top_n``.

    Returns ``day``, ``snapshot_day``, ``cmc_rank``, ``cmc_symbol``, ``coingecko_id`` (null
    when unpriced), ``member`` (a stable key: the CoinGecko id, else ``cmc:<symbol>``). Days
    before the first usable snapshot have no row."""
    missing = [c for c in PIT_SCHEMA if c not in pit.columns]
    if missing:
        raise DomainError(f"point-in-time membership needs columns {list(PIT_SCHEMA)}: {missing}")
    if top_n < 1:
        raise DomainError(f"top_n must be >= 1, got {top_n}")
    if not days:
        return pl.DataFrame(
            schema={"day": pl.Int64(), "snapshot_day": pl.Int64()}
            | {k: v for k, v in PIT_SCHEMA.items() if k != "snapshot_day"}
            | {"member": pl.String()}
        )
    snaps = pl.DataFrame(
        {"snapshot_day": snapshot_days(pit)}, schema={"snapshot_day": pl.Int64()}
    ).with_columns(usable=pl.col("snapshot_day") + USABLE_AFTER_DAYS)
    grid = pl.DataFrame({"day": sorted(set(days))}, schema={"day": pl.Int64()})
    chosen = grid.join_asof(snaps, left_on="day", right_on="usable", strategy="backward").filter(
        pl.col("snapshot_day").is_not_null()
    )
    return (
        chosen.drop("usable")
        .join(pit.filter(pl.col("cmc_rank") <= top_n), on="snapshot_day", how="inner")
        .with_columns(
            member=pl.coalesce(
                pl.col("coingecko_id"), pl.concat_str(pl.lit("cmc:"), pl.col("cmc_symbol"))
            )
        )
        .unique(["day", "member"], keep="first", maintain_order=True)
        .sort("day", "cmc_rank")
    )
