"""`cst backtest`: replay the scan (same analyzer as the Lambda and `cst scan`) over past days."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.cli._common import fail, parse_day
from cryptosmarttrader.domain.evaluation import BACKTEST_COST_RATE
from cryptosmarttrader.services.evaluate import EvaluationError, backtest
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer, resolve_data_dir

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
        float, typer.Option("--cost-bps", min=0, help="Fee + slippage per traded notional.")
    ] = BACKTEST_COST_RATE * 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the scan's own decisions on every --every-days day; hold each BUY at the paper size
    until the next scan; report return, max drawdown and Sharpe after costs beside BTC."""
    first, last = parse_day(start, "--start").date(), parse_day(end, "--end").date()
    try:
        analyzer = recorded_analyzer(resolve_data_dir(data), SystemClock(), TradingSettings())
        result = backtest(analyzer, first, last, every_days=every_days, cost_rate=cost_bps / 10_000)
    except (EvaluationError, ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    payload = {
        "start": str(first),
        "end": str(last),
        "every_days": every_days,
        "cost_bps": cost_bps,
        "decisions": [{"asof": str(d.asof), "buys": list(d.buys)} for d in result.days],
        "stats": result.stats,
        "survivorship_bias": "the coin list was chosen in 2025 from survivors: returns are "
        "biased upward",
    }
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    for d in result.days:
        typer.echo(f"{d.asof}: {', '.join(d.buys) or '-'}")
    for name, st in result.stats.items():
        typer.echo(
            f"{name:>12}: return {st['total_return']:+.1%}  max DD {st['max_drawdown']:.1%}  "
            f"Sharpe {st['sharpe']:.2f}"
        )
