"""Daily market caps in the S3 lake, beside the candles (the only module that knows the layout).

Layout: ``dataset=market_cap/source=<source>/month=<YYYY-MM>/part.parquet`` with the rows
(``coin``, ``ts``, ``market_cap``) of that UTC month, sorted by coin and ts. A month holds every
coin, so a 240-day read is 9 GETs whatever the universe size. A write merges into the month's
object (union, the newer row wins on (coin, ts)) and is skipped when the bytes would not change,
so a rerun writes nothing. Reads are cut to ``start <= ts <= end``: a cap keyed after the as-of
is never returned.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import polars as pl
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.s3_lake import LakeError
from cryptosmarttrader.domain.coins import MARKET_CAP_SCHEMA, empty_market_caps
from cryptosmarttrader.domain.types import ms_from_utc

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3MarketCapLake", "market_cap_key"]

_SOURCE_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PART: Final = "part.parquet"
READ_THREADS: Final = 8


def market_cap_key(source: str, month: date) -> str:
    if not _SOURCE_RE.match(source):
        raise ValueError(f"source {source!r} cannot be a lake partition")
    return f"dataset=market_cap/source={source}/month={month:%Y-%m}/{_PART}"


def _months(first: date, last: date) -> list[date]:
    out, cursor = [], date(first.year, first.month, 1)
    while cursor <= last:
        out.append(cursor)
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return out


def _to_parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", compression_level=3, statistics=True)
    return buf.getvalue()


def _from_parquet(body: bytes) -> pl.DataFrame:
    return (
        pl.read_parquet(io.BytesIO(body))
        .select(list(MARKET_CAP_SCHEMA))
        .cast(pl.Schema(MARKET_CAP_SCHEMA))
    )


class S3MarketCapLake:
    """Implements the ``MarketCapStore`` port over one bucket."""

    def __init__(self, bucket: str, client: S3Client, source: str = "coingecko") -> None:
        market_cap_key(source, date(2000, 1, 1))  # validates the source name
        self._bucket = bucket
        self._client = client
        self._source = source

    def write_market_caps(self, frame: pl.DataFrame) -> list[str]:
        """Merge gated rows into their month objects; returns the keys (re)written."""
        if frame.is_empty():
            return []
        rows = frame.select(list(MARKET_CAP_SCHEMA)).cast(pl.Schema(MARKET_CAP_SCHEMA))
        if rows["coin"].null_count() or rows["ts"].null_count():
            raise ValueError("market-cap frame has null coin or ts")
        rows = rows.with_columns(
            _month=pl.from_epoch("ts", time_unit="ms").dt.truncate("1mo").dt.date()
        )
        jobs = [
            (market_cap_key(self._source, month), part.drop("_month"))
            for (month,), part in rows.group_by("_month", maintain_order=True)
            if isinstance(month, date)
        ]
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(jobs))) as pool:
            changed = list(pool.map(lambda job: self._merge_one(*job), jobs))
        return sorted(key for (key, _), did in zip(jobs, changed, strict=True) if did)

    def _merge_one(self, key: str, new: pl.DataFrame) -> bool:
        old_body = self._get(key)
        merged = new if old_body is None else pl.concat([_from_parquet(old_body), new])
        merged = merged.unique(subset=["coin", "ts"], keep="last", maintain_order=True).sort(
            "coin", "ts"
        )
        body = _to_parquet(merged)
        if body == old_body:
            return False
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.apache.parquet",
            )
        except ClientError as exc:
            raise LakeError(f"put s3://{self._bucket}/{key} failed: {exc}") from exc
        return True

    def read_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Caps of ``coins`` with ``start <= ts <= end`` (``MARKET_CAP_SCHEMA``, sorted)."""
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        if end_ms < start_ms:
            raise ValueError(f"end {end} is before start {start}")
        if not coins:
            return empty_market_caps()
        keys = [
            market_cap_key(self._source, m)
            for m in _months(start.astimezone(UTC).date(), end.astimezone(UTC).date())
        ]
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(keys))) as pool:
            bodies = list(pool.map(self._get, keys))
        frames = [_from_parquet(b) for b in bodies if b is not None]
        if not frames:
            return empty_market_caps()
        return (
            pl.concat(frames)
            .filter(pl.col("coin").is_in(list(coins)) & pl.col("ts").is_between(start_ms, end_ms))
            .sort("coin", "ts")
        )

    def _get(self, key: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise LakeError(f"get s3://{self._bucket}/{key} failed: {exc}") from exc
