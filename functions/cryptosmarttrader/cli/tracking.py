"""`cst tracking`: tracking error between paper execution and the backtest's fills, in bps.

Over the same real Binance bars, a fixed decision schedule (every ``--every`` bars per symbol,
alternating a buy of ``--fraction`` of equity and the sell of what was bought) is executed twice:

* paper: each decision goes through the full :class:`ExecutionService` (kill-switch, RiskGuard,
  the conditional order insert, DynamoDB on an embedded moto, positions) to the :class:`PaperExchange`, which fills
  on the next real bar with the volume/spread model;
* backtest: the vectorized bar-backtest convention (:func:`backtest_fills`): next open x
  (1 ± fixed slippage), same fee.

Tracking error per fill = (paper price − backtest price) / backtest price in bps, signed so that
positive means paper paid more (buys) or received less (sells). Fees are equal on both sides.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, parse_day
from cryptosmarttrader.cli._progress import progress_bars, show_progress
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    import polars as pl

    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.domain.paper_fill import BacktestCosts
    from cryptosmarttrader.ports import Progress

# numpy, polars, moto and the execution stack are imported inside the command (fast --help).

app = typer.Typer(
    name="tracking",
    help="Tracking error of paper fills against the backtest's fills on the same real bars.",
    add_completion=False,
)

DEFAULT_SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT,LINK/USDT"


class FrameBars:
    """A ``BarSource`` over frames loaded once (the paper venue reads one bar per order)."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        self._frames = frames

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        frame = self._frames.get(symbol)
        if frame is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        import polars as pl

        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        return frame.filter(pl.col("ts").is_between(lo, hi))


@dataclass(frozen=True)
class TrackingReport:
    fills: int
    rejected: int
    mean_abs_bps: float
    median_abs_bps: float
    p95_abs_bps: float
    max_abs_bps: float
    mean_signed_bps: float
    per_symbol_mean_abs_bps: dict[str, float]
    params: dict[str, object]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def measure(
    market: RecordedMarketData,
    symbols: list[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    every: int,
    equity: Decimal,
    fraction: Decimal,
    costs: BacktestCosts,
    progress: Progress | None = None,
) -> TrackingReport:
    import numpy as np
    import polars as pl

    from cryptosmarttrader.adapters.dynamodb_store import (
        DynamoOrderStore,
        DynamoPositionStore,
        DynamoStateStore,
    )
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.paper_exchange import PaperExchange
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.domain.clock import FixedClock
    from cryptosmarttrader.domain.market import TIMEFRAME_MS
    from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
    from cryptosmarttrader.domain.paper_fill import backtest_fills
    from cryptosmarttrader.domain.risk import MarketQuote, size_for_fraction
    from cryptosmarttrader.domain.types import Money, Price, Quantity, Side, Symbol, utc_from_ms
    from cryptosmarttrader.services.execution import ExecutionService
    from cryptosmarttrader.services.risk_state import RiskStateService
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    tf_ms = TIMEFRAME_MS[timeframe]
    frames = {
        s: market.ohlcv(s, timeframe, start - timedelta(days=2), end + timedelta(days=1))
        for s in symbols
    }
    clock = FixedClock(start)
    paper = PaperExchange(FrameBars(frames), clock, timeframe=timeframe)
    decisions = _schedule(frames, start, end, every, tf_ms)
    rows: list[dict[str, object]] = []
    rejected = 0
    with tempfile.TemporaryDirectory() as tmp, embedded_aws(Path(tmp), AwsResources()) as aws:
        res = aws.resources
        switch = SsmKillSwitch(res.kill_switch_param, aws.ssm, clock)
        service = ExecutionService(
            orders=DynamoOrderStore(res.orders_table, aws.dynamodb),
            positions=DynamoPositionStore(res.positions_table, aws.dynamodb),
            kill_switch=switch,
            risk=RiskStateService(DynamoStateStore(res.state_table, aws.dynamodb), switch, clock),
            exchange=paper,
            clock=clock,
            metrics=InMemoryMetrics(),
        )
        held: dict[str, Quantity] = {}
        for done, (decided_ms, symbol, last_close, volume_24h) in enumerate(decisions):
            if progress is not None:
                progress("paper decisions", done, len(decisions))
            clock.current = utc_from_ms(decided_ms)
            price = Price.of(last_close)
            buying = symbol not in held
            qty = (
                size_for_fraction(Money(equity), fraction, price.value) if buying else held[symbol]
            )
            if qty is None:
                continue
            side = Side.BUY if buying else Side.SELL
            intent = OrderIntent(
                "tracking",
                Symbol(symbol),
                side,
                Intent.OPEN if buying else Intent.CLOSE,
                decided_ms,
                qty,
                price,
            )
            quote = MarketQuote(utc_from_ms(decided_ms), Decimal(repr(volume_24h)))
            result = service.submit(intent, equity=Money(equity), quote=quote)
            if result.status != OrderStatus.FILLED.value or result.average_price is None:
                rejected += 1
                continue
            if buying:
                held[symbol] = qty
            else:
                held.pop(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "decided_ms": decided_ms,
                    "side": side.value,
                    "quantity": float(qty.value),
                    "paper_price": float(result.average_price),
                }
            )
    if progress is not None:
        progress("paper decisions", len(decisions), len(decisions))
    if not rows:
        raise ValueError("no paper fill in the period: nothing to compare")
    paper_fills = pl.DataFrame(rows)
    bt = backtest_fills(paper_fills, pl.concat(frames.values()), costs)
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    te = bt.with_columns(
        te_bps=sign * (pl.col("paper_price") - pl.col("fill_price")) / pl.col("fill_price") * 1e4
    )
    abs_bps = te["te_bps"].abs().to_numpy()
    per_symbol = te.group_by("symbol").agg(pl.col("te_bps").abs().mean()).sort("symbol")
    return TrackingReport(
        fills=te.height,
        rejected=rejected,
        mean_abs_bps=round(float(abs_bps.mean()), 3),
        median_abs_bps=round(float(np.median(abs_bps)), 3),
        p95_abs_bps=round(float(np.quantile(abs_bps, 0.95)), 3),
        max_abs_bps=round(float(abs_bps.max()), 3),
        mean_signed_bps=round(float(te["te_bps"].to_numpy().mean()), 3),
        per_symbol_mean_abs_bps={str(s): round(float(v), 3) for s, v in per_symbol.iter_rows()},
        params={
            "symbols": symbols,
            "timeframe": timeframe,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "every_bars": every,
            "equity": str(equity),
            "fraction": str(fraction),
            "backtest_slippage_bps": costs.slippage_bps,
            "fee_rate": costs.fee_rate,
        },
    )


def _schedule(
    frames: dict[str, pl.DataFrame], start: datetime, end: datetime, every: int, tf_ms: int
) -> list[tuple[int, str, float, float]]:
    """(decision time = close of a bar, symbol, that bar's close, 24 h quote volume up to it)."""
    import polars as pl

    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    window = max(1, 86_400_000 // tf_ms)
    out: list[tuple[int, str, float, float]] = []
    for symbol, frame in frames.items():
        marks = (
            frame.sort("ts")
            .with_columns(
                decided=pl.col("ts") + tf_ms,
                vol24=(pl.col("volume") * pl.col("close")).rolling_sum(window),
            )
            .filter(pl.col("ts").is_between(lo, hi) & pl.col("vol24").is_not_null())
            .gather_every(every)
        )
        out += [
            (int(d), symbol, float(c), float(v))
            for d, c, v in marks.select("decided", "close", "vol24").iter_rows()
        ]
    return sorted(out)


@app.callback(invoke_without_command=True)
def tracking(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated pairs.")
    ] = DEFAULT_SYMBOLS,
    timeframe: Annotated[str, typer.Option("--timeframe", help="1h, 4h or 1d.")] = "1h",
    start: Annotated[str, typer.Option("--start", help="UTC date YYYY-MM-DD.")] = "2022-05-01",
    end: Annotated[str, typer.Option("--end", help="UTC date YYYY-MM-DD.")] = "2022-06-01",
    every: Annotated[int, typer.Option("--every", min=1, help="Decide every N bars.")] = 12,
    equity: Annotated[float, typer.Option("--equity", min=1.0)] = 100_000.0,
    fraction: Annotated[float, typer.Option("--fraction", min=0.0001, max=1.0)] = 0.02,
    slippage_bps: Annotated[
        float, typer.Option("--backtest-slippage-bps", min=0.0, help="Backtest's fixed slippage.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure the tracking error (bps) of paper fills against the backtest's fills."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last <= first:
        fail("--end must be after --start")
    if timeframe not in {"1h", "4h", "1d"}:
        fail(f"--timeframe must be 1h, 4h or 1d, got {timeframe!r}")
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.domain.paper_fill import BacktestCosts
    from cryptosmarttrader.wiring import resolve_data_dir

    try:
        market = RecordedMarketData(resolve_data_dir(data))
        with progress_bars(show_progress(as_json)) as progress:
            report = measure(
                market,
                [s.strip() for s in symbols.split(",") if s.strip()],
                timeframe,
                first,
                last,
                every,
                Decimal(str(equity)),
                Decimal(str(fraction)),
                BacktestCosts(slippage_bps),
                progress,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if as_json:
        typer.echo(jsonout.dumps(report.as_dict(), indent=1))
        return
    typer.echo(
        f"{report.fills} paper fills vs backtest fills ({report.rejected} decisions not filled)\n"
        f"tracking error |bps|: mean {report.mean_abs_bps}  median {report.median_abs_bps}  "
        f"p95 {report.p95_abs_bps}  max {report.max_abs_bps}  (signed mean "
        f"{report.mean_signed_bps}; target < 20)"
    )
    for symbol, value in report.per_symbol_mean_abs_bps.items():
        typer.echo(f"  {symbol}: mean |TE| {value} bps")
