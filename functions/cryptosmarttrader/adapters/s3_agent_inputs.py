"""Perpetual funding rates and the sentiment index in the S3 lake, beside the candles (the only
module that knows their layout).

Layout:

* ``dataset=funding/exchange=<ex>/symbol=<BASE-QUOTE>/month=<YYYY-MM>/part.parquet``: the
  ``FUNDING_SCHEMA`` rows (spot pair, funding time ms, rate) of that UTC month;
* ``dataset=sentiment/source=<source>/year=<YYYY>/part.parquet``: the index's daily readings
  (``ts`` = the day the index names, 00:00 UTC; ``value`` 0-100; ``classification``);
* ``dataset=withdrawals/exchange=<ex>/month=<YYYY-MM>/part.parquet``: each observation of the
  venue's withdrawal constraints (``WITHDRAWAL_SCHEMA``, ``symbol`` = the coin code ``BTC``,
  ``ts`` = when observed), merged on (coin, ts);
* ``dataset=withdrawals/exchange=<ex>/status.json``: the venue's last withdrawals run,
  ``{"observed_ms": ..., "reason": ...}``: ``reason`` says why the venue's constraints could
  not be read then (no read-only keys for a venue that serves them to signed requests only,
  the venue's error), null when they were.

A write merges into its object (union, the newer row wins on ``ts``) and is skipped when the
bytes would not change, so a rerun writes nothing. Reads are cut to ``start <= ts <= end``.
Mark-price candles are candles: they live in the candle lake (:mod:`.s3_lake`) under the
exchange label ``<exchange>-mark``.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import polars as pl
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.s3_lake import LakeError, symbol_slug
from cryptosmarttrader.domain.agents.arbitrage import WITHDRAWAL_SCHEMA
from cryptosmarttrader.domain.agents.funding import FUNDING_SCHEMA
from cryptosmarttrader.domain.types import ms_from_utc

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "SENTIMENT_SCHEMA",
    "S3AgentInputs",
    "funding_key",
    "mark_exchange",
    "sentiment_key",
    "withdrawals_key",
    "withdrawals_status_key",
]

SENTIMENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Int64(),
    "value": pl.Float64(),
    "classification": pl.String(),
}
_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_PART: Final = "part.parquet"


def mark_exchange(exchange: str) -> str:
    """The candle lake's exchange label of ``exchange``'s perpetual mark-price candles."""
    return f"{exchange}-mark"


def _name(what: str, value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"{what} {value!r} cannot be a lake partition")
    return value


def funding_key(exchange: str, symbol: str, month: date) -> str:
    return (
        f"dataset=funding/exchange={_name('exchange', exchange)}/symbol={symbol_slug(symbol)}/"
        f"month={month:%Y-%m}/{_PART}"
    )


def withdrawals_key(exchange: str, month: date) -> str:
    return f"dataset=withdrawals/exchange={_name('exchange', exchange)}/month={month:%Y-%m}/{_PART}"


def withdrawals_status_key(exchange: str) -> str:
    return f"dataset=withdrawals/exchange={_name('exchange', exchange)}/status.json"


def sentiment_key(source: str, year: int) -> str:
    return f"dataset=sentiment/source={_name('source', source)}/year={year:04d}/{_PART}"


def _months(first: date, last: date) -> list[date]:
    out, cursor = [], date(first.year, first.month, 1)
    while cursor <= last:
        out.append(cursor)
        cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
    return out


def _utc_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


class S3AgentInputs:
    """Funding rates and sentiment readings over one bucket."""

    def __init__(self, bucket: str, client: S3Client) -> None:
        self._bucket = bucket
        self._client = client

    # ------------------------------------------------------------------ funding
    def write_funding(self, frame: pl.DataFrame, exchange: str) -> list[str]:
        """Merge ``FUNDING_SCHEMA`` rows into their months. Returns the keys (re)written."""
        if frame.is_empty():
            return []
        rows = frame.select(list(FUNDING_SCHEMA)).cast(pl.Schema(FUNDING_SCHEMA))
        rows = rows.with_columns(
            _month=pl.from_epoch("ts", time_unit="ms").dt.truncate("1mo").dt.date()
        )
        written: list[str] = []
        for (symbol, month), part in rows.group_by("symbol", "_month", maintain_order=True):
            assert isinstance(month, date)
            key = funding_key(exchange, str(symbol), month)
            if self._merge(key, part.drop("_month"), FUNDING_SCHEMA):
                written.append(key)
        return sorted(written)

    def read_funding(
        self, exchange: str, symbol: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        frames = [
            body
            for month in _months(_utc_date(start_ms), _utc_date(end_ms))
            if (body := self._read(funding_key(exchange, symbol, month), FUNDING_SCHEMA))
            is not None
        ]
        return _cut(frames, FUNDING_SCHEMA, start_ms, end_ms)

    # ------------------------------------------------------------------ sentiment
    def write_sentiment(self, frame: pl.DataFrame, source: str) -> list[str]:
        if frame.is_empty():
            return []
        rows = frame.select(list(SENTIMENT_SCHEMA)).cast(pl.Schema(SENTIMENT_SCHEMA))
        rows = rows.with_columns(_year=pl.from_epoch("ts", time_unit="ms").dt.year())
        written: list[str] = []
        for (year,), part in rows.group_by("_year", maintain_order=True):
            key = sentiment_key(source, int(str(year)))
            if self._merge(key, part.drop("_year"), SENTIMENT_SCHEMA):
                written.append(key)
        return sorted(written)

    def read_sentiment(self, source: str, start: datetime, end: datetime) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        frames = [
            body
            for year in range(_utc_date(start_ms).year, _utc_date(end_ms).year + 1)
            if (body := self._read(sentiment_key(source, year), SENTIMENT_SCHEMA)) is not None
        ]
        return _cut(frames, SENTIMENT_SCHEMA, start_ms, end_ms)

    # ------------------------------------------------------------------ withdrawals
    def write_withdrawals(self, frame: pl.DataFrame, exchange: str) -> list[str]:
        """Merge observations (``WITHDRAWAL_SCHEMA``, coin codes) into their months."""
        if frame.is_empty():
            return []
        rows = frame.select(list(WITHDRAWAL_SCHEMA)).cast(pl.Schema(WITHDRAWAL_SCHEMA))
        rows = rows.with_columns(
            _month=pl.from_epoch("ts", time_unit="ms").dt.truncate("1mo").dt.date()
        )
        written: list[str] = []
        for (month,), part in rows.group_by("_month", maintain_order=True):
            assert isinstance(month, date)
            key = withdrawals_key(exchange, month)
            if self._merge(key, part.drop("_month"), WITHDRAWAL_SCHEMA, ("symbol", "ts")):
                written.append(key)
        return sorted(written)

    def read_withdrawals(self, exchange: str, start: datetime, end: datetime) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        frames = [
            body
            for month in _months(_utc_date(start_ms), _utc_date(end_ms))
            if (body := self._read(withdrawals_key(exchange, month), WITHDRAWAL_SCHEMA)) is not None
        ]
        if not frames:
            return pl.DataFrame(schema=WITHDRAWAL_SCHEMA)
        return (
            pl.concat(frames)
            .filter(pl.col("ts").is_between(start_ms, end_ms))
            .unique(subset=["symbol", "ts"], keep="last")
            .sort("symbol", "ts")
        )

    def write_withdrawal_status(self, exchange: str, observed_ms: int, reason: str | None) -> None:
        """The venue's last withdrawals run: why its constraints could not be read (None: they
        were)."""
        key = withdrawals_status_key(exchange)
        body = json.dumps({"observed_ms": observed_ms, "reason": reason}).encode()
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType="application/json"
            )
        except ClientError as exc:
            raise LakeError(f"put s3://{self._bucket}/{key} failed: {exc}") from exc

    def read_withdrawal_status(self, exchange: str) -> tuple[int, str | None] | None:
        """(when observed, why unreadable or None) of the venue's last withdrawals run; None
        when no run has recorded one (or the record cannot be parsed)."""
        body = self._get(withdrawals_status_key(exchange))
        if body is None:
            return None
        try:
            item = json.loads(body)
            observed, reason = item["observed_ms"], item["reason"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(observed, int) or not (reason is None or isinstance(reason, str)):
            return None
        return observed, reason

    # ------------------------------------------------------------------ S3 plumbing
    def _merge(
        self,
        key: str,
        new: pl.DataFrame,
        schema: dict[str, pl.DataType],
        keys: tuple[str, ...] = ("ts",),
    ) -> bool:
        old = self._get(key)
        merged = new if old is None else pl.concat([_parquet(old, schema), new])
        merged = merged.unique(subset=list(keys), keep="last", maintain_order=True).sort(*keys)
        buf = io.BytesIO()
        merged.write_parquet(buf, compression="zstd", compression_level=3, statistics=True)
        body = buf.getvalue()
        if body == old:
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

    def _read(self, key: str, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
        body = self._get(key)
        return None if body is None else _parquet(body, schema)

    def _get(self, key: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise LakeError(f"get s3://{self._bucket}/{key} failed: {exc}") from exc


def _parquet(body: bytes, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(body)).select(list(schema)).cast(pl.Schema(schema))


def _cut(
    frames: list[pl.DataFrame], schema: dict[str, pl.DataType], start_ms: int, end_ms: int
) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(frames)
        .filter(pl.col("ts").is_between(start_ms, end_ms))
        .unique(subset="ts", keep="last")
        .sort("ts")
    )
