"""S3 Parquet lake for OHLCV candles (the only module that knows the lake's layout).

Layout: ``exchange=<ex>/timeframe=<tf>/symbol=<BASE-QUOTE>/<period>/part.parquet``: one object
per (symbol, UTC date) for timeframes under 4 hours (``date=<YYYY-MM-DD>``, at most 24 hourly
bars), one per (symbol, UTC month) for 4-hour and daily bars (``month=<YYYY-MM>``, at most 186
or 31 bars). A year of daily bars is 13 objects to read, not 365: a scan over the universe is
thousands of S3 GETs fewer, and a backfill as many PUTs fewer. Objects of the earlier one-per-date
layout of daily bars are still read (a month object wins over them on the same ``ts``), so a lake
written before keeps serving while new bars go to month objects.

A write merges with the partition's existing object (union, dedupe on ``ts`` with the newer row
winning, sort) and is skipped when the merged bytes equal the stored ones, so a rerun with the
same input writes nothing. Parquet bytes are deterministic: fixed schema and column order, fixed
compression, no timestamps in the file.
"""

from __future__ import annotations

import io
import re
from calendar import monthrange
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import polars as pl
from botocore.exceptions import ClientError

from cryptosmarttrader.domain.market import OHLCV_SCHEMA, empty_ohlcv
from cryptosmarttrader.domain.types import ms_from_utc

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["LakeError", "S3ParquetLake", "partition_key", "symbol_slug"]

_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PART = "part.parquet"
WRITE_THREADS = 16
MERGE_ATTEMPTS = 5  # conditional PUTs of one object before a write gives up (other writers)
_CONFLICT_CODES: Final = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
_TIMEFRAME_RE = re.compile(r"^(\d+)([mhdwM])$")
_UNIT_MINUTES: Final = {"m": 1, "h": 60, "d": 1440, "w": 10080, "M": 43200}
MONTHLY_FROM_MINUTES: Final = 240  # 4h and longer bars: one object per month


class LakeError(RuntimeError):
    """An S3 call of the lake failed; the message names the bucket and key."""


def symbol_slug(symbol: str) -> str:
    """``BTC/USDT`` → ``BTC-USDT`` (coin ids pass through). Rejects anything path-like."""
    slug = symbol.replace("/", "-")
    if not _SLUG_RE.match(slug) or ".." in slug:
        raise ValueError(f"symbol {symbol!r} cannot be a lake partition")
    return slug


def _prefix(exchange: str, timeframe: str, symbol: str) -> str:
    for what, value in (("exchange", exchange), ("timeframe", timeframe)):
        if not _SLUG_RE.match(value):
            raise ValueError(f"{what} {value!r} cannot be a lake partition")
    return f"exchange={exchange}/timeframe={timeframe}/symbol={symbol_slug(symbol)}/"


def _monthly(timeframe: str) -> bool:
    """Whether ``timeframe``'s bars are kept one object per month (else one per date)."""
    match = _TIMEFRAME_RE.match(timeframe)
    if match is None:
        raise ValueError(f"timeframe {timeframe!r} is not like 1h / 4h / 1d")
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2)] >= MONTHLY_FROM_MINUTES


def _period(timeframe: str, day: date) -> str:
    return f"month={day:%Y-%m}" if _monthly(timeframe) else f"date={day.isoformat()}"


def partition_key(exchange: str, timeframe: str, symbol: str, day: date) -> str:
    """The object that holds ``symbol``'s ``timeframe`` bars opening on ``day``."""
    return f"{_prefix(exchange, timeframe, symbol)}{_period(timeframe, day)}/{_PART}"


def _to_parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", compression_level=3, statistics=True)
    return buf.getvalue()


def _from_parquet(body: bytes) -> pl.DataFrame:
    return (
        pl.read_parquet(io.BytesIO(body)).select(list(OHLCV_SCHEMA)).cast(pl.Schema(OHLCV_SCHEMA))
    )


class S3ParquetLake:
    """Implements the ``LakeStore`` port over one bucket."""

    def __init__(self, bucket: str, client: S3Client) -> None:
        self._bucket = bucket
        self._client = client

    # ------------------------------------------------------------------ write

    def write_candles(self, frame: pl.DataFrame, exchange: str, timeframe: str) -> list[str]:
        """Merge ``frame`` into its partitions. Returns the keys actually (re)written."""
        missing = set(OHLCV_SCHEMA) - set(frame.columns)
        if missing:
            raise ValueError(f"candles frame lacks columns {sorted(missing)}")
        if frame.is_empty():
            return []
        frame = frame.select(list(OHLCV_SCHEMA)).cast(pl.Schema(OHLCV_SCHEMA))
        if frame["ts"].null_count() or frame["symbol"].null_count():
            raise ValueError("candles frame has null ts or symbol")
        opened = pl.from_epoch("ts", time_unit="ms").dt.date()
        if _monthly(timeframe):
            opened = opened.dt.truncate("1mo")
        frame = frame.with_columns(opened.alias("_date"))
        jobs: list[tuple[str, pl.DataFrame, bool]] = []
        for (symbol,), per_symbol in frame.group_by("symbol", maintain_order=True):
            prefix = _prefix(exchange, timeframe, str(symbol))
            parts: list[tuple[str, pl.DataFrame]] = []
            for (day,), part in per_symbol.group_by("_date", maintain_order=True):
                assert isinstance(day, date)
                parts.append((f"{prefix}{_period(timeframe, day)}/{_PART}", part.drop("_date")))
            # only the partitions this write touches are listed: an ingest writes a long
            # history batch after batch, and listing the whole series before each batch made
            # the listing grow with every batch already written
            keys = [key for key, _ in parts]
            existing = self._existing_keys(prefix, first=min(keys), last=max(keys))
            jobs.extend((key, part, key in existing) for key, part in parts)
        # Partitions are independent objects: merge them concurrently (S3 calls are I/O bound).
        # Every job runs to completion or raises; a failure leaves other partitions whole.
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            changed = list(pool.map(lambda job: self._merge_one(*job), jobs))
        return sorted(key for (key, _, _), did in zip(jobs, changed, strict=True) if did)

    def _merge_one(self, key: str, new: pl.DataFrame, exists: bool) -> bool:
        """Merge ``new`` into the object at ``key`` with a conditional PUT (``If-Match`` the
        version read, ``If-None-Match: *`` when there was none): a writer that changed the
        object in between (another ingest run, a backfill) makes the PUT fail, and the merge is
        redone on its bytes, so no writer's bars are ever dropped."""
        for _ in range(MERGE_ATTEMPTS):
            old_body, etag = self._get_versioned(key) if exists else (None, None)
            merged = new if old_body is None else pl.concat([_from_parquet(old_body), new])
            merged = merged.unique(subset="ts", keep="last", maintain_order=True).sort("ts")
            body = _to_parquet(merged)
            if body == old_body:
                return False
            condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/vnd.apache.parquet",
                    **condition,  # type: ignore[arg-type]
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code in _CONFLICT_CODES:
                    exists = True  # changed (or created) by another writer: merge again
                    continue
                raise LakeError(f"put s3://{self._bucket}/{key} failed: {exc}") from exc
            return True
        raise LakeError(
            f"put s3://{self._bucket}/{key} failed: changed by other writers "
            f"{MERGE_ATTEMPTS} times in a row; nothing of this write was lost, rerun it"
        )

    # ------------------------------------------------------------------ read

    def read_candles(
        self, exchange: str, timeframe: str, symbol: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Candles of one symbol with ``start <= ts <= end`` (``OHLCV_SCHEMA``, sorted by ts)."""
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        if end_ms < start_ms:
            raise ValueError(f"end {end} is before start {start}")
        first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
        prefix = _prefix(exchange, timeframe, symbol)
        frames = [
            _from_parquet(body)
            for key in _in_span(self._existing_keys(prefix), first, last)
            if (body := self._get(key)) is not None
        ]
        if not frames:
            return empty_ohlcv()
        return (
            pl.concat(frames)
            .filter(pl.col("ts").is_between(start_ms, end_ms))
            .unique(subset="ts", keep="last", maintain_order=True)
            .sort("ts")
        )

    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        """The symbols (``BASE/QUOTE``) that hold at least one partition, sorted."""
        prefix = f"exchange={exchange}/timeframe={timeframe}/"
        found: set[str] = set()
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, Delimiter="/"
            ):
                for common in page.get("CommonPrefixes", []):
                    slug = common["Prefix"].removeprefix(prefix).removeprefix("symbol=").rstrip("/")
                    found.add(slug.replace("-", "/", 1))
        except ClientError as exc:
            raise LakeError(f"list s3://{self._bucket}/{prefix} failed: {exc}") from exc
        return sorted(found)

    def days(self, exchange: str, timeframe: str, symbol: str) -> list[date]:
        """The UTC dates on which a stored bar of this symbol opened, ascending."""
        keys = self._existing_keys(_prefix(exchange, timeframe, symbol))
        found = {
            span[0]
            for k in keys
            if k.split("/")[-2].startswith("date=") and (span := _key_span(k)) is not None
        }
        for key in (k for k in keys if k.split("/")[-2].startswith("month=")):
            body = self._get(key)
            if body is not None:
                opened = pl.from_epoch(_from_parquet(body)["ts"], time_unit="ms").dt.date()
                found.update(opened.to_list())
        return sorted(found)

    # ------------------------------------------------------------------ S3 plumbing

    def _existing_keys(
        self, prefix: str, *, first: str | None = None, last: str | None = None
    ) -> set[str]:
        """The partition keys under ``prefix``; with ``first`` / ``last``, only those between
        the two (inclusive): S3 lists keys in ascending order, so the listing starts at
        ``first`` and stops at the first page that reaches past ``last``."""
        keys: set[str] = set()
        # a key's proper prefix sorts before it: StartAfter (exclusive) of its parent "folder"
        start = {"StartAfter": first.removesuffix(f"/{_PART}")} if first is not None else {}
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket,
                Prefix=prefix,
                **start,  # type: ignore[arg-type]
            ):
                listed = [o["Key"] for o in page.get("Contents", [])]
                keys.update(k for k in listed if k.endswith(_PART) and (last is None or k <= last))
                if last is not None and listed and listed[-1] > last:
                    break
        except ClientError as exc:
            raise LakeError(f"list s3://{self._bucket}/{prefix} failed: {exc}") from exc
        return keys

    def _get_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        """The object's bytes and ETag, ``(None, None)`` when there is none."""
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
            return answer["Body"].read(), str(answer["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None, None
            raise LakeError(f"get s3://{self._bucket}/{key} failed: {exc}") from exc

    def _get(self, key: str) -> bytes | None:
        return self._get_versioned(key)[0]


def _key_span(key: str) -> tuple[date, date] | None:
    """The first and last UTC date whose bars the object ``key`` can hold (``None``: an object
    that is not a partition of this layout, which no read uses)."""
    period = key.split("/")[-2]
    try:
        if period.startswith("month="):
            first = date.fromisoformat(period.removeprefix("month=") + "-01")
            return first, first.replace(day=monthrange(first.year, first.month)[1])
        if period.startswith("date="):
            day = date.fromisoformat(period.removeprefix("date="))
            return day, day
    except ValueError:
        return None
    return None


def _in_span(keys: set[str], first: date, last: date) -> list[str]:
    """The objects that can hold bars opening in ``[first, last]``: earlier one-per-date objects
    before month objects, so a month object's row wins on the same ``ts``."""
    wanted = [
        k
        for k in keys
        if (span := _key_span(k)) is not None and span[0] <= last and span[1] >= first
    ]
    return sorted(wanted, key=lambda k: (k.split("/")[-2].startswith("month="), k))
