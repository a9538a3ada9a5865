"""`cst data`: inspect the recorded real data. `cst data check` runs the quality gate on it all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, parse_day
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.types import ms_from_utc, utc_from_ms

if TYPE_CHECKING:
    import polars as pl

    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.domain.quality import QualityResult

# polars and the recorded-data adapter are imported inside the commands (fast `cst --help`).

app = typer.Typer(
    name="data",
    help="Recorded real market data: quality report.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def data() -> None:
    """Recorded real market data: quality report."""


@dataclass(frozen=True)
class SourceReport:
    """The gate's result for one source, with the asof it was checked at."""

    source: str
    asof_ms: int
    result: QualityResult

    def summary(self) -> dict[str, object]:
        return {
            "source": self.source,
            "asof": utc_from_ms(self.asof_ms).isoformat(),
            "series": self.result.checked_symbols,
            "rows": self.result.checked_rows,
            "excluded": len(self.result.excluded),
            "totals": self.result.totals(),
        }


def _last_ms(frame: pl.DataFrame, what: str) -> int:
    from cryptosmarttrader.adapters.recorded_data import DataSourceError

    last = frame["ts"].max()
    if not isinstance(last, int):
        raise DataSourceError(f"{what}: no rows up to the requested asof")
    return last


def run_checks(market: RecordedMarketData, asof: datetime | None) -> list[SourceReport]:
    """Gate every price source of the data dir. Without ``asof`` each source is checked at its
    own last bar; with it, only rows up to ``asof`` are read (no look-ahead).

    Candle files are checked as recorded (file order): a file that cannot be used (unreadable,
    empty, impossible timestamps) is a finding of its source, and every other file is still
    checked."""
    import polars as pl

    from cryptosmarttrader.adapters.recorded_data import CandleBatch, DataSourceError
    from cryptosmarttrader.domain.market import OHLCV_SCHEMA
    from cryptosmarttrader.domain.quality import (
        QualityCode,
        check_daily,
        check_ohlcv,
        source_finding,
    )

    reports: list[SourceReport] = []
    daily = market.daily_all()
    if asof is not None:
        daily = daily.filter(pl.col("ts") <= ms_from_utc(asof))
    at = ms_from_utc(asof) if asof is not None else _last_ms(daily, "coingecko_daily")
    daily_result = check_daily(daily, at, source="coingecko", prior=market.daily_findings)
    reports.append(SourceReport("coingecko", at, daily_result))

    candle_sources: list[tuple[str, str, Callable[[], list[tuple[Path, str]]]]] = [
        (f"binance_spot_{tf}", tf, partial(market.spot_files, tf)) for tf in ("1d", "4h", "1h")
    ]
    for source, timeframe, suffix in (
        ("binance_futures_mark_8h", "8h", "8h-mark"),
        ("binance_futures_1h", "1h", "1h-futures"),
        ("binance_futures_1d", "1d", "1d-futures"),
    ):
        candle_sources.append(
            (source, timeframe, partial(_futures_files, market, "BTC/USDT", suffix))
        )
    for source, timeframe, files in candle_sources:
        try:
            batch = market.candles_as_recorded(files(), source, asof)
        except DataSourceError as exc:  # a missing folder or file: this source's finding
            missing = source_finding(QualityCode.UNREADABLE, source, "*", str(exc))
            batch = CandleBatch(pl.DataFrame(schema=OHLCV_SCHEMA), (missing,))
        at = ms_from_utc(asof) if asof is not None else _last_ms_or_now(batch.frame, asof)
        result = check_ohlcv(batch.frame, timeframe, at, source=source, prior=batch.findings)
        reports.append(SourceReport(source, at, result))
    return reports


def _futures_files(market: RecordedMarketData, symbol: str, suffix: str) -> list[tuple[Path, str]]:
    return [(market.futures_file(symbol, suffix), symbol)]


def _last_ms_or_now(frame: pl.DataFrame, asof: datetime | None) -> int:
    """The source's own last bar; a source without any usable row is checked as of asof, or
    of the epoch when none is given (its file findings are the report)."""
    last = frame["ts"].max() if frame.height else None
    if isinstance(last, int):
        return last
    return ms_from_utc(asof) if asof is not None else 0


@app.command("check")
def check(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"findings": [...], "totals": {...}}.')
    ] = False,
    asof: Annotated[
        str | None,
        typer.Option("--asof", help="Check only data up to this UTC date, YYYY-MM-DD."),
    ] = None,
) -> None:
    """Run the zero-tolerance quality gate over every source of the data dir and report findings.

    Nothing is repaired: a series with an error-severity finding is reported as excluded.
    """
    day = parse_day(asof) if asof is not None else None
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.wiring import resolve_data_dir

    try:
        market = RecordedMarketData(resolve_data_dir(data))
        reports = run_checks(market, day)
        rules = universe_exclusions(market)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if as_json:
        _print_json(reports, rules)
    else:
        _print_table(reports, rules)


def universe_exclusions(market: RecordedMarketData) -> dict[str, str]:
    """Coins with a price file that the universe rules leave out, with the reason each. Without
    a metadata file no coin can be judged: the one entry ``"*"`` says so."""
    from cryptosmarttrader.adapters.recorded_data import DataSourceError

    try:
        metadata = market.coins_metadata()
    except DataSourceError as exc:
        return {"*": f"universe rules not applied: {exc}"}
    with_prices = {p.stem for p in market.coins_dir.glob("*.csv")}
    return {
        coin: reason
        for coin, meta in sorted(metadata.items())
        if coin in with_prices and (reason := meta.exclusion) is not None
    }


def _print_json(reports: list[SourceReport], rules: dict[str, str]) -> None:
    findings = [f.model_dump(mode="json") for r in reports for f in r.result.findings]
    totals = Counter(f["code"] for f in findings)
    payload = {
        "findings": findings,
        "totals": dict(sorted(totals.items())),
        "sources": [r.summary() for r in reports],
        "universe_exclusions": rules,
    }
    typer.echo(jsonout.dumps(payload, indent=1))


def _print_table(reports: list[SourceReport], rules: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title="Data-quality gate: series per source")
    for column in ("source", "asof", "series", "rows", "excluded"):
        summary.add_column(column, justify="left" if column in {"source", "asof"} else "right")
    for r in reports:
        summary.add_row(
            r.source,
            utc_from_ms(r.asof_ms).date().isoformat(),
            str(r.result.checked_symbols),
            f"{r.result.checked_rows:,}",
            str(len(r.result.excluded)),
        )
    console.print(summary)

    by_code = Table(title="Findings per source and code")
    for column in ("source", "code", "series", "errors", "warnings", "info", "bars"):
        by_code.add_column(column, justify="left" if column in {"source", "code"} else "right")
    for r in reports:
        grouped: dict[str, list[int]] = {}
        for f in r.result.findings:
            row = grouped.setdefault(f.code.value, [0, 0, 0, 0, 0])
            row[0] += 1
            row[{"error": 1, "warning": 2, "info": 3}[f.severity.value]] += 1
            row[4] += f.count
        for code, (n, err, warn, info, bars) in sorted(grouped.items()):
            by_code.add_row(r.source, code, str(n), str(err), str(warn), str(info), f"{bars:,}")
    console.print(by_code)

    excluded = Table(title="Excluded series (first reason)")
    for column in ("source", "symbol", "codes", "reason"):
        excluded.add_column(column)
    for r in reports:
        for f in r.result.errors():
            codes = r.result.excluded[f.symbol]
            if f.code.value == codes[0]:
                excluded.add_row(r.source, f.symbol, ",".join(codes), f.reason)
    console.print(excluded)

    universe = Table(title=f"Excluded from the universe by rule ({len(rules)})")
    for column in ("coin", "reason"):
        universe.add_column(column)
    for coin, reason in rules.items():
        universe.add_row(coin, reason)
    console.print(universe)
