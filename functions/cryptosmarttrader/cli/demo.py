"""`cst demo`: the whole pipeline end to end on an embedded local AWS (moto) over real data.

Drives the same Lambda handlers that run on AWS, in-process: the ingest handler replays the
recorded Binance candles into the S3 Parquet lake; the scan handler runs as the daily schedule
would, over the CoinGecko universe, and records paper orders in DynamoDB; a redelivered
schedule creates no second order; with the kill-switch on nothing trades.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptosmarttrader.cli._common import fail
from cryptosmarttrader.cli._progress import show_progress, working

if TYPE_CHECKING:
    from rich.console import Console

# Heavy libraries (polars, numpy, ccxt, moto, boto3) are imported inside the functions that use
# them, so `cst --help` and the light commands start fast (see bench/bench_cli_startup.py).

LIVE_BARS = 300  # SMA200 plus margin for the scan's 260-day window
EXECUTION_PAIR = "BTC/USDT"  # whose recorded hourly candles bound the replayed execution
SEARCH_DAYS = 90  # how far back the demo looks for a day with a decision to execute
KILL_SWITCH_CACHE_S = 5  # SsmKillSwitch's cache: a flip takes effect within this many seconds


@dataclass
class _LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"


@dataclass(frozen=True)
class _Plan:
    """Where the demo's real data comes from and what each Lambda is asked to do."""

    source: str  # "recorded" or "live"
    description: str
    env: dict[str, str]
    ingest_event: dict[str, Any]
    asof: datetime
    # recorded data: the execution cycles run at replayed instants after the decision; live:
    # the next bar has not happened yet, so the cycle runs now and the venue acknowledges only
    replay_execution: bool = False


def _latest_day_with_a_buy(data_dir: Path, latest_ms: int, top: int) -> int:
    """The latest day up to ``latest_ms`` whose scan (read-only) gates at least one BUY among
    the tradable coins, so the demo has a decision to execute; ``latest_ms`` if none within
    ``SEARCH_DAYS`` (the demo then shows a scan that decides to hold)."""
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.domain.market import DAY_MS
    from cryptosmarttrader.domain.types import Action, utc_from_ms
    from cryptosmarttrader.settings import TradingSettings
    from cryptosmarttrader.wiring import recorded_analyzer

    settings = TradingSettings(universe="tradable")
    analyzer = recorded_analyzer(data_dir, SystemClock(), settings)
    for back in range(SEARCH_DAYS):
        day_ms = latest_ms - back * DAY_MS
        ranked = analyzer.analyze(utc_from_ms(day_ms), top).ranked
        if any(r.action is Action.BUY for r in ranked):
            return day_ms
    return latest_ms


def _recorded_plan(data: Path | None, timeframe: str, ingest_bars: int, top: int) -> _Plan:
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.domain.market import DAY_MS, TIMEFRAME_MS
    from cryptosmarttrader.domain.types import utc_from_ms
    from cryptosmarttrader.wiring import DataSourceUnavailableError, resolve_data_dir

    data_dir = resolve_data_dir(data)
    market = RecordedMarketData(data_dir)
    pairs = market.available_pairs(timeframe)
    _, last_ms = market.data_span()
    ends = [
        market.ohlcv(p, timeframe, utc_from_ms(0), utc_from_ms(last_ms))["ts"].max() for p in pairs
    ]
    replay_end_ms = max(e for e in ends if isinstance(e, int))
    # decide on the last day with a full day of hourly bars after it, so the execution cycles
    # that follow the scan have real bars to fill on and to value positions at
    hourly = market.ohlcv(EXECUTION_PAIR, "1h", utc_from_ms(0), utc_from_ms(last_ms))
    hourly_end = hourly["ts"].max()
    if not isinstance(hourly_end, int):
        raise DataSourceUnavailableError(f"no recorded 1h candles of {EXECUTION_PAIR}")
    latest_ms = min(last_ms, hourly_end) // DAY_MS * DAY_MS - DAY_MS
    decide_ms = _latest_day_with_a_buy(data_dir, latest_ms, top)
    return _Plan(
        source="recorded",
        description=(
            f"recorded real data in {data_dir}: {len(pairs)} Binance pairs ({timeframe}, the last "
            f"{ingest_bars} bars to {utc_from_ms(replay_end_ms):%Y-%m-%d}) into the lake; the scan "
            f"ranks the coins the paper venue can trade as of {utc_from_ms(decide_ms):%Y-%m-%d} "
            f"(the latest day up to {utc_from_ms(latest_ms):%Y-%m-%d} on which it gates a BUY) "
            "and the execution cycles fill on the recorded hourly bars after it"
        ),
        # the scan ranks what the paper venue can trade, as a deployment (exchange pairs) does
        env={
            "CST_DATA_SOURCE": "recorded",
            "CST_DATA_DIR": str(data_dir),
            "CST_UNIVERSE": "tradable",
            # a replay deployment: the execution cycles run at replayed instants (`at`)
            "CST_ALLOW_REPLAYS": "true",
            # the demo's registry holds no promoted model: it opts in to paper trading on the
            # technical agent, which the scan's basis and every row state
            "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
        },
        ingest_event={
            "exchange": "binance",
            "timeframe": timeframe,
            "symbols": pairs,
            "initial_lookback_bars": ingest_bars,
            # replay as if now were just after the recording's last bar closed
            "replay_asof": utc_from_ms(replay_end_ms + TIMEFRAME_MS[timeframe]).isoformat(),
        },
        asof=utc_from_ms(decide_ms),
        replay_execution=True,
    )


def _live_plan(exchange: str, live_pairs: int) -> _Plan:
    from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.domain.universe import is_tradable_pair
    from cryptosmarttrader.wiring import DataSourceUnavailableError

    clock = SystemClock()
    venue = CcxtExchange.create(exchange, clock)
    ranked = venue.most_traded("USDT", live_pairs * 2)
    pairs = [s.value for s in ranked if is_tradable_pair(s.value)][:live_pairs]
    if not pairs:
        raise DataSourceUnavailableError(f"{exchange} lists no tradable USDT pair")
    return _Plan(
        source="live",
        description=(
            f"live public {exchange} data: the {len(pairs)} most traded USDT pairs, "
            f"{LIVE_BARS} daily candles each, into the lake; the scan ranks them from the lake"
        ),
        env={
            "CST_DATA_SOURCE": "ccxt",
            "CST_EXCHANGE": exchange,
            "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",  # no promoted model: the demo's opt-in
        },
        ingest_event={
            "exchange": exchange,
            "timeframe": "1d",
            "symbols": pairs,
            "initial_lookback_bars": LIVE_BARS,
        },
        asof=clock.now(),
    )


def demo(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Recorded data dir (default: CST_DATA_DIR or ../shared/data)."),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="auto: recorded data when present, else live exchange data; or recorded / live.",
        ),
    ] = "auto",
    exchange: Annotated[
        str, typer.Option("--exchange", help="Venue for --source live (binance, kraken, kucoin).")
    ] = "binance",
    live_pairs: Annotated[int, typer.Option("--live-pairs", min=1, max=200)] = 30,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Where the local AWS state goes (default: a fresh temp dir)."
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=100)] = 10,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candles to ingest.")] = "1d",
    ingest_bars: Annotated[
        int,
        typer.Option("--ingest-bars", min=1, help="Most recent recorded bars per pair to ingest."),
    ] = 120,
) -> None:
    """Run ingest → scan → redelivered scan → kill-switch drill, on real data, locally.

    Real data only: the recorded data when present, else live public exchange data through
    ccxt; when neither can be had it stops with an error, never with invented prices.
    """
    if source not in {"auto", "recorded", "live"}:
        fail(f"--source must be auto, recorded or live, got {source!r}")
    from rich.console import Console

    from cryptosmarttrader.domain.exchange import ExchangeError
    from cryptosmarttrader.domain.types import DomainError

    console = Console()
    plan: _Plan | None = None
    why_not_recorded = ""
    if source in {"auto", "recorded"}:
        try:
            with working("reading the recorded data, choosing the decision day", show_progress()):
                plan = _recorded_plan(data, timeframe, ingest_bars, top)
        except (ValueError, RuntimeError, OSError) as exc:
            why_not_recorded = str(exc).splitlines()[0]
            if source == "recorded":
                fail(why_not_recorded)
    if plan is None:
        try:
            plan = _live_plan(exchange, live_pairs)
        except (ExchangeError, DomainError, ValueError, RuntimeError, OSError) as exc:
            lead = f"no recorded data ({why_not_recorded}) and " if why_not_recorded else ""
            fail(f"{lead}no live exchange data: {str(exc).splitlines()[0]}")
    _run(console, plan, state or Path(tempfile.mkdtemp(prefix="cst-demo-")), top)


def _fresh_environment(plan: _Plan) -> tuple[ModuleType, ModuleType, ModuleType]:
    """Set the Lambdas' environment, then give them a cold start (settings parsed anew)."""
    os.environ.update(
        {
            **plan.env,
            "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
    )
    from cryptosmarttrader.handlers import _common
    from cryptosmarttrader.handlers import execute as execute_handler
    from cryptosmarttrader.handlers import ingest as ingest_handler
    from cryptosmarttrader.handlers import scan as scan_handler

    _common.reset_caches()
    ingest_handler._source.cache_clear()
    scan_handler._service.cache_clear()
    execute_handler._market.cache_clear()
    return ingest_handler, scan_handler, execute_handler


def _run(console: Console, plan: _Plan, state_dir: Path, top: int) -> None:
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    resources = AwsResources()
    console.rule("[bold]CryptoSmartTrader demo — embedded local AWS (moto, in-process)")
    console.print(f"data: {plan.description}")
    console.print(f"local AWS state: {state_dir}")
    with embedded_aws(state_dir, resources) as aws:
        ingest_handler, scan_handler, execute_handler = _fresh_environment(plan)
        event = plan.ingest_event
        console.rule(
            f"1. ingest Lambda: {len(event['symbols'])} {event['exchange']} pairs, "
            f"{event['timeframe']}, {plan.source} data"
        )
        started = time.perf_counter()
        with working("ingest Lambda running", show_progress()):
            ingested = _quiet(
                ingest_handler.handler, event, _LambdaContext("cst-ingest", "demo-ingest-1")
            )
        console.print(_summarize_ingest(ingested, time.perf_counter() - started))
        lake = aws.s3.list_objects_v2(Bucket=resources.lake_bucket, MaxKeys=3)
        for obj in lake.get("Contents", []):
            console.print(f"  s3://{resources.lake_bucket}/{obj['Key']}")

        asof = plan.asof
        console.rule(f"2. scan Lambda: scheduled run as of {asof:%Y-%m-%d}")
        scan_event = {"top_n": top, "asof": f"{asof:%Y-%m-%d}"}
        with working("scan Lambda running", show_progress()):
            first = _quiet(
                scan_handler.handler, scan_event, _LambdaContext("cst-scan", "demo-scan-1")
            )
        _print_scan(console, first)

        console.rule("3. execution Lambda: the hourly cycles after the scan")
        _execute(console, execute_handler, plan)

        console.rule("4. the same scan schedule delivered again (at-least-once delivery)")
        with working("scan Lambda running again", show_progress()):
            second = _quiet(
                scan_handler.handler, scan_event, _LambdaContext("cst-scan", "demo-scan-2")
            )
        rep = second.get("report", {})
        console.print(
            f"orders created: {rep.get('orders_created')}   "
            f"duplicates prevented: {rep.get('duplicates_prevented')}"
        )

        console.rule("5. kill-switch drill")
        switch = SsmKillSwitch(resources.kill_switch_param, aws.ssm, SystemClock())
        switch.set(True, "demo drill", "cst demo")
        console.print(f"kill-switch: {switch.status().model_dump(mode='json')}")
        console.print(f"waiting {KILL_SWITCH_CACHE_S} s for every cached read to expire…")
        time.sleep(KILL_SWITCH_CACHE_S + 0.5)
        later = {"top_n": top, "asof": f"{asof - timedelta(days=1):%Y-%m-%d}"}
        third = _quiet(scan_handler.handler, later, _LambdaContext("cst-scan", "demo-scan-3"))
        rep = third.get("report", {})
        blocked = [r for r in rep.get("rows", []) if "kill_switch" in " ".join(r["reasons"])]
        console.print(
            f"scan as of {later['asof']}: orders created {rep.get('orders_created')}, "
            f"{len(blocked)} BUY decision(s) held by the kill-switch"
        )
        switch.set(False, "demo drill over", "cst demo")

        orders = aws.dynamodb.scan(TableName=resources.orders_table, Select="COUNT")["Count"]
        console.rule("done")
        console.print(
            f"orders in DynamoDB: {orders}   state kept in {state_dir} "
            f"(run `cst scan --state-dir {state_dir} …` to continue from it)"
        )
    if first.get("status") != "ok":
        fail(f"scan failed: {first.get('error')}")
    _print_dashboard(console, state_dir)


def _print_dashboard(console: Console, state_dir: Path) -> None:
    """Where to look at this run in a browser: the API and the dashboard over this state."""
    console.rule("dashboard")
    console.print(
        "see this run in the browser: serve the API and the dashboard over its state, then open "
        "the address it prints and sign in with the x-api-key it prints:"
    )
    console.print(f"  uv run cst api serve --state-dir {state_dir} --port 8080", soft_wrap=True)
    console.print("  open http://127.0.0.1:8080/   (docs/web.md)", soft_wrap=True)


def _execute(console: Console, handler: ModuleType, plan: _Plan) -> None:
    """Two hourly cycles: the decisions are re-checked and sent, then filled on the next bar."""
    instants = (
        [plan.asof + timedelta(hours=h, minutes=10) for h in (1, 2)]
        if plan.replay_execution
        else [None]
    )
    report: dict[str, Any] = {}
    for n, at in enumerate(instants, start=1):
        event = {} if at is None else {"at": at.isoformat()}
        with working(f"execution Lambda, cycle {n} of {len(instants)}", show_progress()):
            result = _quiet(
                handler.handler, event, _LambdaContext("cst-execution", f"demo-exec-{n}")
            )
        if result.get("status") != "ok":
            console.print(f"[red]execution {result.get('status')}: {result.get('error')}")
            return
        report = result["report"]
        console.print(
            f"cycle at {report['at']}: sent {report['dispatched']}, refused "
            f"{report['cancelled_new']}, positions {len(report['positions'])}, "
            f"equity {_usd(report['equity'])}, fees {_usd(report['fees'])}, "
            f"risk level {report['risk_level']}"
        )
    from rich.table import Table

    from cryptosmarttrader.handlers._common import aws_clients, resources

    orders = aws_clients().dynamodb.scan(TableName=resources().orders_table)["Items"]
    table = Table(title="orders after the cycles (paper venue, real bars)")
    for col in ("symbol", "status", "quantity", "fill price", "fee", "why"):
        table.add_column(col)
    for item in sorted(orders, key=lambda i: (i["status"]["S"], i["symbol"]["S"])):
        table.add_row(
            item["symbol"]["S"],
            item["status"]["S"],
            item["quantity"]["N"],
            item.get("average_price", {}).get("N", "-"),
            item.get("fee", {}).get("N", "-"),
            item.get("cancel_reason", {}).get("S", ""),
        )
    console.print(table)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f} USD"


def _quiet(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    event: dict[str, Any],
    context: _LambdaContext,
) -> dict[str, Any]:
    """Invoke a handler with its EMF metric lines (stdout, for CloudWatch) kept off the screen."""
    with contextlib.redirect_stdout(io.StringIO()):
        return handler(event, context)


def _summarize_ingest(result: dict[str, Any], seconds: float) -> str:
    if result.get("status") not in (None, "ok"):
        return f"ingest {result.get('status')}: {result.get('error')}"
    report = result.get("report", result)
    return (
        f"candles ingested: {report.get('ingested')}   lake objects written: "
        f"{report.get('objects_written')}   breaker: {report.get('breaker_state')}   "
        f"({seconds:.1f} s)"
    )


def _print_scan(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    if result.get("status") != "ok":
        console.print(f"[red]scan {result.get('status')}: {result.get('error')}")
        return
    rep = result["report"]
    table = Table(
        title=f"universe {rep['universe']} · excluded by quality {rep['excluded_by_quality']} · "
        f"abstained {rep['abstained']} · orders created {rep['orders_created']}\n"
        f"{rep['decision_basis']}"
    )
    for col in ("#", "symbol", "score", "conf", "action", "client order id", "decision"):
        table.add_column(col)
    for r in rep["rows"]:
        table.add_row(
            str(r["rank"]),
            r["symbol"],
            "-" if r["score"] is None else f"{r['score']:.3f}",
            "-" if r["confidence"] is None else f"{r['confidence']:.2f}",
            r["action"],
            r["client_order_id"] or "-",
            r["reasons"][-1] if r["reasons"] else "",
        )
    console.print(table)
