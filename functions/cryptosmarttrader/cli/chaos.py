"""`cst chaos run`: inject real faults into the pipeline on local infrastructure, check recovery.

Everything runs on 127.0.0.1: a moto server for DynamoDB/S3/SSM, a loopback exchange for ccxt,
child processes for the memory and disk limits. See docs/chaos.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptosmarttrader.cli._common import fail, parse_day
from cryptosmarttrader.cli._progress import progress_bars, show_progress
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cst_devtools.chaos import ChaosReport

LAMBDA_MEMORY_MB = 2048  # the scan function's configured memory (infra/config.py scan_function)
# cst_devtools.chaos.SCENARIOS, spelled out so `cst --help` needs no polars (a test keeps them equal)
SCENARIOS: tuple[str, ...] = (
    "network",
    "upstream",
    "load",
    "database",
    "memory",
    "disk",
    "execution",
    "input",
    "killswitch",
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True)


@app.command("run")
def run(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help=f"Run only these (repeat): {', '.join(SCENARIOS)}."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    asof: Annotated[
        str, typer.Option("--asof", help="As-of date of the scans the faults hit.")
    ] = "2021-05-01",
    lambda_memory_mb: Annotated[
        int,
        typer.Option(
            "--lambda-memory-mb",
            min=512,
            max=10240,
            help="Memory cap (RLIMIT_AS) of the memory scenario's healthy run.",
        ),
    ] = LAMBDA_MEMORY_MB,
) -> None:
    """Run the chaos scenarios (all by default). Exit 1 if any fails."""
    names = tuple(scenario) if scenario else SCENARIOS
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        fail(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    parse_day(asof)
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.settings import TradingSettings
    from cryptosmarttrader.wiring import recorded_analyzer, resolve_data_dir
    from cst_devtools.chaos import run_suite
    from cst_devtools.faults import LocalChaosLab

    try:
        data_dir = resolve_data_dir(data)
        analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    with (
        tempfile.TemporaryDirectory(prefix="cst-chaos-") as work,
        LocalChaosLab(
            data_dir, analyzer, Path(work), asof=asof, lambda_memory_mb=lambda_memory_mb
        ) as lab,
        progress_bars(show_progress(as_json)) as progress,
    ):
        report = run_suite(lab, names, progress=progress)
    _print(report, as_json)
    if not report.passed:
        raise typer.Exit(1)


def _print(report: ChaosReport, as_json: bool) -> None:
    if as_json:
        typer.echo(jsonout.dumps(report.model_dump(mode="json"), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"cst chaos run: {'PASSED' if report.passed else 'FAILED'} in {report.seconds:.1f}s"
    )
    for col in ("scenario", "result", "recovery s", "lost", "dup", "failed checks / findings"):
        table.add_column(col, overflow="fold")
    for r in report.scenarios:
        notes = [*r.details.get("failed_checks", []), *r.details.get("findings", [])]
        if "error" in r.details:
            notes.append(str(r.details["error"]))
        table.add_row(
            r.scenario,
            "pass" if r.passed else "FAIL",
            "-" if r.recovery_seconds is None else f"{r.recovery_seconds:.2f}",
            str(r.orders_lost),
            str(r.orders_duplicated),
            "; ".join(notes) or "-",
        )
    Console().print(table)
