"""`cst ingest`: load recorded Binance spot candles into the local lake through the embedded AWS.

The same IngestService as the Lambda: quality gate, S3 Parquet lake, watermarks in the state
table. A rerun finds every series at its watermark and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.cli._progress import progress_bars, show_progress
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.types import utc_from_ms

if TYPE_CHECKING:
    from cryptosmarttrader.services.ingest import IngestReport

EXCHANGE = "binance"  # the recorded candles are Binance spot

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def ingest(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Candle timeframe: 1h, 4h or 1d.")
    ] = "1d",
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            help="Pairs such as BTC/USDT (repeat or comma-separate); default: every recorded pair.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."
        ),
    ] = None,
) -> None:
    """Ingest recorded candles into the lake (quality-gated, idempotent, resumable)."""
    if timeframe not in {"1h", "4h", "1d"}:
        fail(f"--timeframe must be 1h, 4h or 1d, got {timeframe!r}")
    from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.services.ingest import (
        IngestConfig,
        IngestService,
        MarketDataReplaySource,
    )
    from cryptosmarttrader.settings import AwsResources
    from cryptosmarttrader.wiring import resolve_data_dir
    from cst_devtools.local_aws import embedded_aws

    try:
        market = RecordedMarketData(resolve_data_dir(data))
        available = market.available_pairs(timeframe)
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    wanted = [s.strip() for item in (symbols or []) for s in item.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        fail(
            f"no recorded {timeframe} candles for {', '.join(unknown)}; "
            f"available: {', '.join(available)}"
        )
    selected = wanted or available
    resources = AwsResources()
    metrics = InMemoryMetrics()
    with embedded_aws(state_dir(state), resources) as aws:
        service = IngestService(
            source=MarketDataReplaySource(market, EXCHANGE),
            lake=S3ParquetLake(resources.lake_bucket, aws.s3),
            state=DynamoStateStore(resources.state_table, aws.dynamodb),
            metrics=metrics,
            clock=SystemClock(),
            config=IngestConfig(initial_lookback_bars=None),
        )
        with progress_bars(show_progress(as_json)) as progress:
            report = service.run(EXCHANGE, timeframe, selected, progress)
    _print(report, as_json)
    failed = [o for o in report.outcomes if o.status in {"exchange_error", "rejected"}]
    if failed or report.skipped_reason:
        # what was good is in the lake; the rest is named above and exits non-zero
        raise typer.Exit(1)


def _print(report: IngestReport, as_json: bool) -> None:
    if as_json:
        typer.echo(jsonout.dumps(report.to_dict(), indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"cst ingest {report.exchange} {report.timeframe}: {report.ingested} candles, "
        f"{report.objects_written} lake objects written, breaker {report.breaker_state}"
    )
    for col in ("symbol", "status", "ingested", "objects", "watermark (UTC)", "reason"):
        table.add_column(col, overflow="fold")
    for o in report.outcomes:
        mark = "-" if o.watermark_ms is None else f"{utc_from_ms(o.watermark_ms):%Y-%m-%d %H:%M}"
        table.add_row(o.symbol, o.status, str(o.ingested), str(o.objects_written), mark, o.reason)
    Console().print(table)
    if report.skipped_reason:
        Console(stderr=True).print(f"skipped: {report.skipped_reason}", markup=False)
