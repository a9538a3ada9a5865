"""`cst scan`: rank the universe as of a date and record idempotent paper orders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, parse_day, state_dir
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from rich.console import Console

    from cryptosmarttrader.services.scan import ScanReport


def scan(
    asof: Annotated[str, typer.Option("--asof", help="Decide as of this UTC date, YYYY-MM-DD.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, max=1000, help="How many coins to show.")
    ] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the scan report as one JSON object instead of a table: the ranked "
            "`rows`, each agent's votes and abstentions (`agents`), the regime...",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--report",
            hidden=True,
            help="Accepted for earlier scripts: --json prints the whole report already.",
        ),
    ] = False,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A fitted ensemble (cst model fit-ensemble) or ranking model (cst evaluate "
            "--save-model); default CST_MODEL_DIR, else the technical agent alone.",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."
        ),
    ] = None,
    universe: Annotated[
        str,
        typer.Option(
            "--universe",
            envvar="CST_UNIVERSE",
            help="tradable (default): only coins the paper venue can fill and value; all: the "
            "whole recorded research universe (BUYs on untradable coins are reported, not "
            "ordered).",
        ),
    ] = "tradable",
) -> None:
    """Scan the universe as of --asof: quality gate, technical agent, ranking, RiskGuard, paper orders.

    Reads nothing after --asof. Running the same scan twice creates no second order.
    """
    day = parse_day(asof)
    if universe not in ("tradable", "all"):
        fail(f"--universe must be tradable or all, got {universe!r}")
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.settings import AwsResources, TradingSettings
    from cryptosmarttrader.wiring import (
        recorded_analyzer,
        resolve_data_dir,
        scan_model,
        scan_service,
    )
    from cst_devtools.local_aws import embedded_aws

    try:
        settings = TradingSettings(universe=universe)
        resources = AwsResources()
        data_dir = resolve_data_dir(data)
        analyzer = recorded_analyzer(data_dir, SystemClock(), settings, scan_model(settings, model))
        analysis = analyzer.analyze(day, top)  # market data only: nothing is written if it fails
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    metrics = InMemoryMetrics()
    with embedded_aws(state_dir(state), resources) as aws:
        report = scan_service(analyzer, aws.clients, resources, metrics).execute(analysis)
    del full  # --json prints the whole report (the Lambda's ``report``) with or without it
    _print(report, as_json)


def _print(report: ScanReport, as_json: bool) -> None:
    if as_json:
        typer.echo(jsonout.dumps(report.model_dump(mode="json"), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"CryptoSmartTrader scan as of {report.asof:%Y-%m-%d} — universe {report.universe}, "
        f"excluded by rule {len(report.excluded_by_rule)}, "
        f"excluded by quality {report.excluded_by_quality}, orders created {report.orders_created}, "
        f"duplicates prevented {report.duplicates_prevented}\n{report.decision_basis}"
    )
    for col in ("#", "symbol", "score", "conf", "action", "client order id", "reasons"):
        table.add_column(col, overflow="fold")
    for r in report.rows:
        table.add_row(
            str(r.rank),
            r.symbol,
            "-" if r.score is None else f"{r.score:.3f}",
            "-" if r.confidence is None else f"{r.confidence:.2f}",
            r.action.value,
            r.client_order_id or "-",
            "; ".join(r.reasons),
        )
    console.print(table)
    if report.not_ordered_untradable:
        console.print(
            f"research universe: {report.not_ordered_untradable} BUY decision(s) on coins the "
            "paper venue cannot trade were not recorded as orders (--universe tradable ranks "
            "only what `cst execute` can fill)",
            style="yellow",
            markup=False,
        )
    _print_rule_exclusions(console, report.excluded_by_rule)
    _print_agents(console, report)


def _print_agents(console: Console, report: ScanReport) -> None:
    """The regime and what it changed, then each agent's votes and abstentions with reasons."""
    from rich.table import Table

    if report.regime_effect is not None:
        console.print(f"Regime: {report.regime_effect}", markup=False)
        if report.regime_reason:
            console.print(f"  {report.regime_reason}", markup=False, style="dim")
    if not report.agents:
        return
    table = Table(title="Agents (votes / abstentions over the coins scored)")
    for col in ("agent", "votes", "abstentions", "top abstention reasons"):
        table.add_column(col, overflow="fold")
    for name, counts in report.agents.items():
        reasons = "; ".join(f"{n}x {r}" for r, n in list(counts.abstention_reasons.items())[:3])
        votes = f"{counts.votes} ({counts.vetoes} vetoed)" if counts.vetoes else str(counts.votes)
        table.add_row(name, votes, str(counts.abstentions), reasons or "-")
    console.print(table)


def _print_rule_exclusions(console: Console, excluded: dict[str, str]) -> None:
    """The coins the universe rules left out, each with its reason (one row per reason kind
    when many coins share it, e.g. "no recorded exchange pair" under CST_UNIVERSE=tradable)."""
    from rich.table import Table

    if not excluded:
        return
    by_reason: dict[str, list[str]] = {}
    for symbol, reason in sorted(excluded.items()):
        by_reason.setdefault(reason, []).append(symbol)
    table = Table(title=f"Excluded by rule ({len(excluded)}): not growth candidates")
    table.add_column("coins", overflow="fold")
    table.add_column("reason", overflow="fold")
    for reason, symbols in sorted(by_reason.items(), key=lambda kv: (len(kv[1]), kv[0])):
        shown = ", ".join(symbols[:12]) + (
            f" … (+{len(symbols) - 12})" if len(symbols) > 12 else ""
        )
        table.add_row(shown, reason)
    console.print(table)
