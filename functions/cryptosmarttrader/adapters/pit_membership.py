"""The recorded point-in-time universe: ``cmc_monthly/top200_point_in_time.csv`` read in place.

Columns (see the data README): ``snapshot_date``, ``cmc_rank``, ``cmc_symbol``, ``cmc_name``,
``market_cap_usd``, ``price_usd``, ``volume_24h_usd``, ``coingecko_id`` (empty where no price
series matches). A missing file means "no point-in-time universe" (``None``); a malformed one is
an error naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from cryptosmarttrader.domain.pit_universe import PIT_SCHEMA

__all__ = ["PIT_FILE", "PitMembershipError", "load_pit_membership"]

PIT_FILE: Final = Path("cmc_monthly") / "top200_point_in_time.csv"
_REQUIRED: Final = ("snapshot_date", "cmc_rank", "cmc_symbol", "market_cap_usd", "coingecko_id")


class PitMembershipError(ValueError):
    """The point-in-time membership file exists but cannot be used (the message says why)."""


def load_pit_membership(data_dir: Path) -> pl.DataFrame | None:
    path = data_dir / PIT_FILE
    if not path.is_file():
        return None
    try:
        raw = pl.read_csv(path, infer_schema_length=0)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise PitMembershipError(f"{path}: unreadable ({exc})") from exc
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise PitMembershipError(f"{path}: missing columns {missing}")
    try:
        frame = raw.select(
            snapshot_day=pl.col("snapshot_date").str.to_date("%Y-%m-%d").cast(pl.Int64),
            cmc_rank=pl.col("cmc_rank").cast(pl.Int64),
            cmc_symbol=pl.col("cmc_symbol"),
            market_cap_usd=pl.col("market_cap_usd").cast(pl.Float64),
            volume_24h_usd=(
                pl.col("volume_24h_usd").cast(pl.Float64)
                if "volume_24h_usd" in raw.columns
                else pl.lit(None, pl.Float64)
            ),
            coingecko_id=pl.when(pl.col("coingecko_id").str.strip_chars() != "").then(
                pl.col("coingecko_id").str.strip_chars()
            ),
        )
    except pl.exceptions.PolarsError as exc:
        raise PitMembershipError(f"{path}: bad value ({str(exc).splitlines()[0]})") from exc
    if frame["snapshot_day"].null_count() or frame["cmc_rank"].null_count():
        raise PitMembershipError(f"{path}: a row has no snapshot_date or cmc_rank")
    dup = frame.group_by("snapshot_day", "cmc_rank").len().filter(pl.col("len") > 1)
    if dup.height:
        raise PitMembershipError(f"{path}: {dup.height} (snapshot, rank) pairs appear twice")
    return frame.cast(PIT_SCHEMA).sort("snapshot_day", "cmc_rank")  # type: ignore[arg-type]
