"""`cst`: the command-line front of CryptoSmartTrader (typer + rich)."""

from __future__ import annotations

import typer

from cryptosmarttrader.cli import data as _data
from cryptosmarttrader.cli import scan as _scan

app = typer.Typer(
    name="cst",
    help="CryptoSmartTrader: real-data crypto scanning, risk-guarded paper/live trading on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("scan")(_scan.scan)
app.add_typer(
    _data.app, name="data", help="Inspect the recorded data: quality findings per source."
)


def main() -> None:  # pragma: no cover - console entry point
    app()
