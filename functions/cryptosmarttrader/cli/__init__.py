"""`cst`: the command-line front of CryptoSmartTrader (typer + rich)."""

from __future__ import annotations

import typer

from cryptosmarttrader.cli import api as _api
from cryptosmarttrader.cli import backtest as _backtest
from cryptosmarttrader.cli import book as _book
from cryptosmarttrader.cli import chaos as _chaos
from cryptosmarttrader.cli import cost as _cost
from cryptosmarttrader.cli import data as _data
from cryptosmarttrader.cli import demo as _demo
from cryptosmarttrader.cli import evaluate as _evaluate
from cryptosmarttrader.cli import execute as _execute
from cryptosmarttrader.cli import golive as _golive
from cryptosmarttrader.cli import ingest as _ingest
from cryptosmarttrader.cli import killswitch as _killswitch
from cryptosmarttrader.cli import local as _local
from cryptosmarttrader.cli import model as _model
from cryptosmarttrader.cli import scan as _scan
from cryptosmarttrader.cli import tracking as _tracking
from cryptosmarttrader.cli import web as _web

app = typer.Typer(
    name="cst",
    help="CryptoSmartTrader: real-data crypto scanning, risk-guarded paper/live trading on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("demo")(_demo.demo)
app.command("scan")(_scan.scan)
app.command("execute")(_execute.execute)
app.command("cost")(_cost.cost)
app.add_typer(_ingest.app, name="ingest", help="Load recorded candles into the local S3 lake.")
app.add_typer(
    _data.app, name="data", help="Inspect the recorded data: quality findings per source."
)
app.add_typer(
    _killswitch.app, name="killswitch", help="Show or set the kill-switch and risk level."
)
app.add_typer(_evaluate.app, name="evaluate", help="Walk-forward evaluation of the ensemble.")
app.add_typer(_backtest.app, name="backtest", help="Replay the scan over past dates.")
app.add_typer(_golive.app, name="golive", help="Go-live: staging, SLO gates, canary, rollback.")
app.add_typer(_tracking.app, name="tracking", help="Paper vs backtest fill tracking error (bps).")
app.add_typer(_chaos.app, name="chaos", help="Chaos suite: real faults on local infra, recovery.")
app.add_typer(_local.app, name="local", help="Deploy the stacks to a local AWS (moto/LocalStack).")
app.add_typer(_api.app, name="api", help="HTTP API: local server over the embedded AWS, OpenAPI.")
app.add_typer(_model.app, name="model", help="ML lifecycle: train, registry, drift, canary.")
app.add_typer(
    _book.app, name="book", help="The stored book: orders and positions the cycle cannot read."
)
app.add_typer(_web.app, name="web", help="Publish the built web dashboard to the deployed stack.")


def main() -> None:  # pragma: no cover - console entry point
    app()
