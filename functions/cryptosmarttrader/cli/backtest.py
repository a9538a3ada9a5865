"""`cst backtest`: replay the scan (same analyzer as the Lambda and `cst scan`) over past days."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, parse_day
from cryptosmarttrader.cli._progress import progress_bars, show_progress
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.ports import Progress
    from cryptosmarttrader.services.paper_replay import ReplayDay
    from cryptosmarttrader.settings import TradingSettings

# numpy, polars, moto and the services are imported inside the command (fast `cst --help`).

# Mounted by the root app as ``app.add_typer(backtest.app, name="backtest")`` → `cst backtest ...`
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.callback(invoke_without_command=True)
def backtest_cmd(
    start: Annotated[str, typer.Option("--start", help="First decision day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (UTC).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    every_days: Annotated[int, typer.Option("--every-days", min=1, help="Days between scans.")] = 7,
    cost_bps: Annotated[
        float | None,
        typer.Option(
            "--cost-bps",
            min=0,
            help="Fee + slippage per traded notional, in bps (default: the evaluation's cost, "
            "BACKTEST_COST_RATE).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fills: Annotated[
        str,
        typer.Option(
            "--fills",
            help="vectorized: weights on daily closes at --cost-bps (default); paper: also "
            "replay every decision through the deployed path (scan, execution cycles, paper "
            "venue on real hourly bars) over the coins the venue can trade.",
        ),
    ] = "vectorized",
) -> None:
    """Run the scan's own decisions on every --every-days day; each BUY opens a position at the
    paper size times the day's regime exposure and follows the strategy's exit rule (take
    profit, stop, time limit); report return, max drawdown and Sharpe after costs beside BTC."""
    first, last = parse_day(start, "--start").date(), parse_day(end, "--end").date()
    if fills not in {"vectorized", "paper"}:
        fail(f"--fills must be vectorized or paper, got {fills!r}")
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.domain.evaluation import BACKTEST_COST_RATE
    from cryptosmarttrader.services.evaluate import EvaluationError, backtest
    from cryptosmarttrader.settings import TradingSettings
    from cryptosmarttrader.wiring import recorded_analyzer, resolve_data_dir

    if cost_bps is None:
        cost_bps = BACKTEST_COST_RATE * 10_000
    settings = TradingSettings(universe="tradable") if fills == "paper" else TradingSettings()
    paper: list[ReplayDay] = []
    try:
        data_dir = resolve_data_dir(data)
        analyzer = recorded_analyzer(data_dir, SystemClock(), settings)
        with progress_bars(show_progress(as_json)) as progress:
            result = backtest(
                analyzer,
                first,
                last,
                every_days=every_days,
                cost_rate=cost_bps / 10_000,
                progress=progress,
            )
            if fills == "paper":
                paper = _paper_replay(data_dir, settings, first, last, every_days, progress)
    except (EvaluationError, ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    payload: dict[str, object] = {
        "start": str(first),
        "end": str(last),
        "every_days": every_days,
        "cost_bps": cost_bps,
        "decisions": [
            {"asof": str(d.asof), "buys": list(d.buys), "regime": d.regime, "exposure": d.exposure}
            for d in result.days
        ],
        "stats": result.stats,
        "survivorship_bias": "the coin list was chosen in 2025 from survivors: returns are "
        "biased upward",
    }
    if paper:
        payload["universe"] = "coins with a recorded exchange pair (what the paper venue trades)"
        payload["paper"] = _paper_summary(paper, settings.equity_usd)
    if as_json:
        typer.echo(jsonout.dumps(payload, indent=2))
        return
    for d in result.days:
        sized = f"  [{d.regime or 'regime unknown'}: {d.exposure:.2f}x size]"
        typer.echo(f"{d.asof}: {', '.join(d.buys) or '-'}{sized}")
    for name, st in result.stats.items():
        typer.echo(
            f"{name:>12}: return {st['total_return']:+.1%}  max DD {st['max_drawdown']:.1%}  "
            f"Sharpe {st['sharpe']:.2f}"
        )
    if paper:
        summary = _paper_summary(paper, settings.equity_usd)
        typer.echo(
            f"{'paper':>12}: return {summary['total_return']:+.1%}  max DD "
            f"{summary['max_drawdown']:.1%}  fills {summary['fills']}  (the deployed path, "
            "fills on the next real hourly bar)"
        )


def _paper_replay(
    data_dir: Path,
    settings: TradingSettings,
    first: date,
    last: date,
    every_days: int,
    progress: Progress,
) -> list[ReplayDay]:
    """The decisions replayed through the scan and execution cycles on a throwaway local AWS."""
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.services.paper_replay import PaperReplay
    from cryptosmarttrader.settings import AwsResources
    from cryptosmarttrader.wiring import recorded_analyzer, scan_service, trading_cycle
    from cst_devtools.local_aws import embedded_aws

    market = RecordedMarketData(data_dir)
    resources = AwsResources()
    with tempfile.TemporaryDirectory() as tmp, embedded_aws(Path(tmp), resources) as aws:
        replay = PaperReplay(
            scan_for=lambda clock: scan_service(
                recorded_analyzer(data_dir, clock, settings), aws.clients, resources,
                InMemoryMetrics(),
            ),
            cycle_for=lambda clock: trading_cycle(
                market, clock, aws.clients, resources, settings, InMemoryMetrics()
            ),
        )  # fmt: skip
        return replay.run(first, last, every_days, progress)


def _paper_summary(days: list[ReplayDay], start_equity: float) -> dict[str, object]:
    import numpy as np

    from cryptosmarttrader.domain.evaluation import max_drawdown

    curve = [start_equity, *(d.equity for d in days if d.equity is not None)]
    return {
        "total_return": curve[-1] / start_equity - 1,
        "max_drawdown": max_drawdown(np.asarray(curve, dtype=np.float64)),
        "fills": sum(d.filled for d in days),
        "days": [
            {
                "asof": str(d.asof),
                "decided": d.decided,
                "filled": d.filled,
                "equity": d.equity,
                "risk_level": d.risk_level,
                "positions": d.positions,
            }
            for d in days
        ],
    }
