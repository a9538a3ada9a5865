"""`cst execute`: one execution cycle over the embedded local AWS (what the hourly Lambda runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, state_dir
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.domain.clock import Clock
    from cryptosmarttrader.services.trading_cycle import CycleReport


def execute(
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Run the cycle as of this past UTC instant (ISO 8601, e.g. "
            "2022-09-29T02:10:00Z); default now.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the cycle report as JSON.")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."
        ),
    ] = None,
) -> None:
    """Send the recorded decisions through the RiskGuard to the paper venue, fill what has a
    bar, value the book and move the risk level: the hourly execution Lambda, locally.

    Run it after `cst scan` with --at a little after the scan's date: the paper venue fills each
    order on the first recorded hourly bar opening after it was sent, once --at has reached it.
    """
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.domain.clock import FixedClock
    from cryptosmarttrader.settings import AwsResources, TradingSettings
    from cryptosmarttrader.wiring import resolve_data_dir, trading_cycle
    from cst_devtools.local_aws import embedded_aws

    clock: Clock = SystemClock()
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at must be an ISO 8601 instant like 2022-09-29T02:10:00Z, got {at!r}")
        if when.tzinfo is None:
            fail(f"--at needs a UTC offset (e.g. a trailing Z), got {at!r}")
        if when > datetime.now(UTC):
            fail(f"--at {at} is in the future: only past instants replay")
        clock = FixedClock(when.astimezone(UTC))
    try:
        settings = TradingSettings()
        resources = AwsResources()
        market = RecordedMarketData(resolve_data_dir(data))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    with embedded_aws(state_dir(state), resources) as aws:
        cycle = trading_cycle(market, clock, aws.clients, resources, settings, InMemoryMetrics())
        try:
            report = cycle.run()
        except ValueError as exc:  # DomainError: e.g. a replay before the stored risk state
            fail(str(exc).splitlines()[0])
    _print(report, as_json)


def _print(report: CycleReport, as_json: bool) -> None:
    if as_json:
        typer.echo(jsonout.dumps(report.model_dump(mode="json"), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    equity = "unknown" if report.equity is None else f"{report.equity:,.2f}"
    console = Console()
    console.print(
        f"execution cycle at {report.at:%Y-%m-%d %H:%M} UTC: sent {report.dispatched}, refused "
        f"{report.cancelled_new}, updated {report.updated}, expired {report.expired}, "
        f"flattened {report.flattened}"
    )
    console.print(
        f"equity {equity} USD, cash {report.cash:,.2f}, fees {report.fees:,.2f}, risk level "
        f"{report.risk_level}" + (f" ({report.risk_transition})" if report.risk_transition else "")
    )
    if report.market_data:
        style = "" if report.market_data_fresh else "bold yellow"
        console.print(f"market data: {report.market_data}", style=style, markup=False)
    table = Table("position", "quantity")
    for symbol, quantity in sorted(report.positions.items()):
        table.add_row(symbol, f"{quantity:g}")
    console.print(table)
