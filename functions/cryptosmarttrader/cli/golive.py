"""`cst golive start|status|rollback`: start a go-live run, follow it, roll it back.

``start`` returns at once with the run's id. With ``CST_GOLIVE_STATE_MACHINE_ARN`` set (a
deployed stack) it starts an execution of the deployed Step Functions machine, named by the run
id. Otherwise the run lives in the state table of the embedded local AWS (or ``AWS_ENDPOINT_URL``)
as persisted steps (``services.golive.GoLiveRunner``): staging starts now, each SLO gate is
stored with the time it is due, and every ``cst golive status`` runs the steps that are due
(same services, order and rollback as the machine). Nothing sleeps and no lock is held between
commands, so other commands run while a stage lasts. CloudWatch metrics of the in-process local
AWS live only for the process that publishes them (``--metrics FILE`` publishes samples for gates
due in that same process); a moto server or LocalStack keeps them between commands.

``rollback`` runs the compensation steps on the local state. Its open orders are cancelled where
``--venue`` says, as for `cst execute`: in the order store (paper), or at the exchange through
the deployed rollback's sweep (``wiring.rollback_sweep``) on a ccxt venue built from the
operator's keys (testnet / live). With ``CST_GOLIVE_STATE_MACHINE_ARN`` set it refuses: a
deployed run is rolled back by the deployed steps (README_OPERATIONS.md).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.cli._common import ExchangeOption, KeysFileOption, fail, state_dir
from cryptosmarttrader.domain import jsonout

if TYPE_CHECKING:
    from cryptosmarttrader.domain.golive import GoLiveParams
    from cryptosmarttrader.ports import VenueSweep
    from cryptosmarttrader.services.golive import GoLiveRunner, GoLiveService, SloService
    from cst_devtools.local_aws import LocalAws

# boto3, moto, polars, rich and the services are imported inside the commands (fast `cst --help`).

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Go-live pipeline: staging -> SLO gate -> canary -> SLO gate -> production.",
)

StateOption = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OPERATOR = "operator:cli"


class MetricsFile(BaseModel):
    """``{"staging": {"ProbeSuccess": [1000], ...}, "canary": {...}}``: one datum per value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    staging: dict[str, list[float]] = Field(default_factory=dict)
    canary: dict[str, list[float]] = Field(default_factory=dict)


def _services(
    aws: LocalAws, venue_sweep: Callable[[], VenueSweep] | None = None
) -> tuple[GoLiveService, SloService]:
    from cryptosmarttrader.adapters.cloudwatch_metric_reader import (
        CloudWatchMetricReader,
        cloudwatch_client,
    )
    from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
    from cryptosmarttrader.adapters.sns_notifier import SnsNotifier, sns_client
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.services.golive import GoLiveService, GoLiveSettings, SloService

    settings = GoLiveSettings()
    clock = SystemClock()
    store = DynamoStateStore(aws.resources.state_table, aws.dynamodb)
    notifier = (
        SnsNotifier(settings.topic_arn, sns_client(aws.resources)) if settings.topic_arn else None
    )
    golive = GoLiveService(
        store=store,
        orders=DynamoOrderStore(aws.resources.orders_table, aws.dynamodb),
        kill_switch=SsmKillSwitch(aws.resources.kill_switch_param, aws.ssm, clock, 0),
        clock=clock,
        notifier=notifier,
        actor=OPERATOR,
        venue_sweep=venue_sweep,
    )
    reader = CloudWatchMetricReader(settings.metrics_namespace, cloudwatch_client(aws.resources))
    return golive, SloService(reader, store, clock, settings.thresholds())


def _publish_metrics(aws: LocalAws, metrics: MetricsFile, namespace: str) -> int:
    from cryptosmarttrader.adapters.cloudwatch_metric_reader import cloudwatch_client
    from cryptosmarttrader.domain.slo import SLO_METRICS, STAGE_DIMENSION

    client = cloudwatch_client(aws.resources)
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    count = 0
    for stage, series in (("staging", metrics.staging), ("canary", metrics.canary)):
        for name, values in series.items():
            if name not in SLO_METRICS:
                fail(
                    f"--metrics: unknown metric {name!r}; expected one of {', '.join(SLO_METRICS)}"
                )
            data: list[Any] = [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": STAGE_DIMENSION, "Value": stage}],
                    "Timestamp": now - timedelta(minutes=1 + i),
                    "Value": value,
                }
                for i, value in enumerate(values)
            ]
            for chunk in range(0, len(data), 500):
                client.put_metric_data(Namespace=namespace, MetricData=data[chunk : chunk + 500])
            count += len(data)
    return count


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    """DynamoDB items → JSON values (numbers stay numbers, datetimes become ISO strings)."""
    return json.loads(json.dumps(value, default=_plain))


@app.command("start")
def start(
    version: Annotated[str, typer.Option("--version", help="The version to take live.")],
    previous_version: Annotated[
        str, typer.Option("--previous-version", help="The live version to revert to on rollback.")
    ],
    staging_seconds: Annotated[
        int, typer.Option("--staging-seconds", help="Paper-trading duration (default 7 days).")
    ] = 7 * 24 * 3600,
    canary_seconds: Annotated[
        int, typer.Option("--canary-seconds", help="Canary duration (default 72 hours).")
    ] = 72 * 3600,
    canary_risk: Annotated[
        float, typer.Option("--canary-risk", help="Canary share of the risk budget (<= 0.01).")
    ] = 0.01,
    slo_window_seconds: Annotated[
        int | None, typer.Option("--slo-window-seconds", help="Gate window (default: stage).")
    ] = None,
    metrics: Annotated[
        Path | None,
        typer.Option("--metrics", help="JSON of sample SLO datapoints to publish first (local)."),
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Default: generated.")] = None,
    as_json: JsonOption = False,
    state: StateOption = None,
) -> None:
    """Start a go-live run and return at once with its id; `cst golive status` follows it. Any
    SLO breach or failed step rolls back."""
    from cryptosmarttrader.domain.golive import GoLiveParams
    from cryptosmarttrader.services.golive import GoLiveRunner, GoLiveSettings
    from cst_devtools.local_aws import cloudwatch_percentiles, embedded_aws

    rid = run_id or f"golive-{datetime.now(tz=UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    try:
        params = GoLiveParams(
            run_id=rid,
            version=version,
            previous_version=previous_version,
            staging_seconds=staging_seconds,
            canary_seconds=canary_seconds,
            canary_risk_fraction=canary_risk,
            slo_window_seconds=slo_window_seconds,
            requested_by=OPERATOR,
        )
        sample = (
            MetricsFile.model_validate_json(metrics.read_text(encoding="utf-8"))
            if metrics
            else None
        )
    except ValidationError as exc:
        fail(
            "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()
            )
        )
    except OSError as exc:
        fail(f"--metrics: {exc}")
    settings = GoLiveSettings()
    if settings.state_machine_arn:
        _start_deployed(settings.state_machine_arn, params, as_json)
        return
    with embedded_aws(state_dir(state)) as aws, cloudwatch_percentiles(aws):
        golive, slo = _services(aws)
        if sample is not None:
            _publish_metrics(aws, sample, settings.metrics_namespace)
        runner = GoLiveRunner(golive, slo)
        runner.start(params)  # returns at once: later steps are due in the future
        report = _status(golive, slo, rid, runner)
    _print(report, as_json)
    if report["run"] and report["run"].get("status") == "ROLLED_BACK":
        raise typer.Exit(1)


def _stepfunctions() -> Any:
    import boto3

    from cryptosmarttrader.settings import AwsResources

    resources = AwsResources()
    return boto3.client(
        "stepfunctions", region_name=resources.region, endpoint_url=resources.aws_endpoint_url
    )


def _execution_arn(state_machine_arn: str, run_id: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"


def _start_deployed(state_machine_arn: str, params: GoLiveParams, as_json: bool) -> None:
    """An execution of the deployed machine, named by the run id (the machine's run id)."""
    from rich.console import Console

    machine_input = params.model_dump(mode="json", exclude={"run_id"}, exclude_none=True)
    try:
        started = _stepfunctions().start_execution(
            stateMachineArn=state_machine_arn, name=params.run_id, input=json.dumps(machine_input)
        )
    except Exception as exc:  # noqa: BLE001 - any AWS error is one line for the operator
        fail(f"could not start {state_machine_arn}: {str(exc).splitlines()[0]}", code=1)
    report = {
        "run_id": params.run_id,
        "execution_arn": started["executionArn"],
        "started_at": started["startDate"].isoformat(),
        "input": machine_input,
    }
    if as_json:
        typer.echo(jsonout.dumps(report, indent=2, sort_keys=True))
        return
    console = Console()
    console.print(f"started go-live run {params.run_id}", markup=False)
    console.print(f"execution: {report['execution_arn']}", markup=False)
    console.print(f"follow it: cst golive status --run-id {params.run_id}", markup=False)


def _deployed_execution(state_machine_arn: str, run_id: str) -> dict[str, Any] | None:
    try:
        described = _stepfunctions().describe_execution(
            executionArn=_execution_arn(state_machine_arn, run_id)
        )
    except Exception as exc:  # noqa: BLE001 - shown, never fatal: the records still print
        return {"error": str(exc).splitlines()[0]}
    shown: dict[str, Any] = _jsonable(
        {
            k: described.get(k)
            for k in ("executionArn", "status", "startDate", "stopDate", "error", "cause")
        }
    )
    return shown


@app.command("status")
def status(
    run_id: Annotated[str | None, typer.Option("--run-id", help="Default: the newest run.")] = None,
    as_json: JsonOption = False,
    state: StateOption = None,
) -> None:
    """Runs, their transitions with reasons, the live version and the SLO evaluations."""
    from cryptosmarttrader.services.golive import GoLiveRunner, GoLiveSettings
    from cst_devtools.local_aws import cloudwatch_percentiles, embedded_aws

    settings = GoLiveSettings()
    with embedded_aws(state_dir(state)) as aws, cloudwatch_percentiles(aws):
        golive, slo = _services(aws)
        runner = GoLiveRunner(golive, slo)
        runs = golive.runs()
        rid = run_id or (str(runs[0]["run_id"]) if runs else None)
        if run_id and golive.run(run_id) is None and not settings.state_machine_arn:
            fail(f"no go-live run {run_id!r}")
        if rid is not None:
            runner.advance(rid)  # the steps that fell due since the last command run now
            runs = golive.runs()
        report = _status(golive, slo, rid, runner) | {
            "runs": [
                {k: r.get(k) for k in ("run_id", "status", "stage", "version", "started_at")}
                for r in runs
            ]
        }
    if settings.state_machine_arn and rid is not None:
        report["execution"] = _deployed_execution(settings.state_machine_arn, rid)
    _print(_jsonable(report), as_json)


DEPLOYED_ROLLBACK: Final = (
    "CST_GOLIVE_STATE_MACHINE_ARN names a deployed go-live machine: its manual rollback runs "
    "the deployed steps (the execution function cancels at the venue with the deployment's "
    "keys), never this command's local state: follow README_OPERATIONS.md, \"Rollback "
    '(manual)", "On a deployed stack" (stop the execution, then invoke EngageKillSwitch, '
    "CancelOpenOrders, RevertVersion, NotifyOperators and RecordRollback in the machine's "
    "order); nothing was changed"
)


@app.command("rollback")
def rollback(
    run_id: Annotated[str, typer.Option("--run-id", help="The run to roll back.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded everywhere).")],
    venue: Annotated[
        str,
        typer.Option(
            "--venue",
            help="Where the open orders rest, as for `cst execute`: paper (default: cancelled "
            "in the order store), testnet or live (cancelled at the exchange with your keys).",
        ),
    ] = "paper",
    exchange: ExchangeOption = None,
    keys_file: KeysFileOption = None,
    as_json: JsonOption = False,
    state: StateOption = None,
) -> None:
    """Manual rollback: kill-switch on, open orders canceled (at the venue with --venue
    testnet|live, held positions' protective sells kept), version reverted, recorded."""
    from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.cli.execute import EXCHANGES, VENUES, real_venue
    from cryptosmarttrader.domain.golive import RUN_ID_PATTERN
    from cryptosmarttrader.services.golive import Failure, GoLiveSettings
    from cryptosmarttrader.settings import AwsResources, TradingSettings
    from cryptosmarttrader.wiring import rollback_sweep
    from cst_devtools.local_aws import embedded_aws

    if not reason.strip():
        fail("--reason must not be empty")
    if re.fullmatch(RUN_ID_PATTERN, run_id) is None:
        # every run's id has this shape (a Step Functions execution name): the kill-switch's
        # rollback marker holds it (docs/golive.md)
        fail(f"--run-id {run_id!r} is no go-live run id (1 to 80 of A-Z a-z 0-9 _ -)")
    if GoLiveSettings().state_machine_arn:
        fail(DEPLOYED_ROLLBACK)
    if venue not in VENUES:
        fail(f"--venue must be one of {', '.join(VENUES)}, got {venue!r}")
    chosen = exchange if exchange is not None else os.environ.get("CST_EXCHANGE", "binance")
    if chosen not in EXCHANGES:
        fail(f"--exchange (or CST_EXCHANGE) must be one of {', '.join(EXCHANGES)}, got {chosen!r}")
    failure = Failure.model_validate({"Error": "ManualRollback", "Cause": reason})
    clock = SystemClock()
    # the venue and its keys are checked before anything changes (a refusal changes nothing)
    real = (
        None
        if venue == "paper"
        else real_venue(venue, chosen, None, keys_file, False, clock, cancels_only=True)
    )
    try:
        settings = TradingSettings(exchange=chosen)
        resources = AwsResources()
    except ValueError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    with embedded_aws(state_dir(state), resources) as aws:
        sweep = None
        if real is not None:  # the deployed rollback's sweep, on the venue built here
            sweep = rollback_sweep(
                clock, aws.clients, aws.resources, settings, InMemoryMetrics(), real_venue=real
            )
        golive, slo = _services(aws, sweep)
        golive.rollback(run_id, failure)
        report = _status(golive, slo, run_id)
    _print(report, as_json)


def _status(
    golive: GoLiveService, slo: SloService, run_id: str | None, runner: GoLiveRunner | None = None
) -> dict[str, Any]:
    report: dict[str, Any] = _jsonable(
        {
            "run": golive.run(run_id) if run_id else None,
            "next_step": runner.next_step(run_id) if runner and run_id else None,
            "transitions": golive.transitions(run_id) if run_id else [],
            "live_version": golive.live_version(),
            "active": golive.active(),
            "slo_evaluations": slo.evaluations(run_id) if run_id else slo.evaluations()[:10],
        }
    )
    return report


def _print(report: Mapping[str, Any], as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        typer.echo(jsonout.dumps(report, indent=2, sort_keys=True))
        return
    console = Console()
    run = report.get("run")
    if run:
        console.print(
            f"run {run['run_id']}: {run.get('status')} at {run.get('stage')} "
            f"(version {run.get('version')}, previous {run.get('previous_version')})",
            markup=False,
        )
        console.print(f"reason: {run.get('reason', '')}", markup=False)
        _print_orders(console, (run.get("rollback_steps") or {}).get("orders"))
        step = report.get("next_step")
        if step:
            console.print(
                f"next: {step['step']} due at {step['due_at']} (UTC); `cst golive status` runs "
                "it once due",
                markup=False,
            )
    else:
        console.print("no go-live run yet", markup=False)
    moves = Table(title="transitions")
    for col in ("at (UTC)", "from", "to", "actor", "reason"):
        moves.add_column(col, overflow="fold")
    for t in report.get("transitions", []):
        moves.add_row(str(t["at"]), t["from_stage"], t["to_stage"], t["actor"], t["reason"])
    console.print(moves)
    gates = Table(title="SLO evaluations")
    for col in ("evaluated (UTC)", "stage", "passed", "summary"):
        gates.add_column(col, overflow="fold")
    for e in report.get("slo_evaluations", []):
        gates.add_row(str(e["evaluated_at"]), e["stage"], str(e["passed"]), e["summary"])
    console.print(gates)
    execution = report.get("execution")
    if execution:
        console.print(
            f"deployed execution: {execution.get('status', execution.get('error'))} "
            f"{execution.get('executionArn', '')}",
            markup=False,
        )
    live = report.get("live_version")
    console.print(f"live version: {live['version'] if live else 'none recorded'}", markup=False)


def _print_orders(console: Any, orders: Any) -> None:
    """The rollback's order step: what was cancelled, kept and left for an operator."""
    if not isinstance(orders, dict):
        return
    counts = ", ".join(
        f"{label} {len(orders.get(key) or ())}"
        for key, label in (("canceled", "canceled"), ("kept", "kept"), ("in_doubt", "in doubt"))
    )
    console.print(f"open orders ({orders.get('venue', '?')} venue): {counts}", markup=False)
    for label, key, style in (
        ("kept", "kept", ""),
        ("in doubt", "in_doubt", "bold yellow"),
        ("unprotected", "unprotected", "bold yellow"),
        ("finished", "finished", ""),
    ):
        for name, why in sorted((orders.get(key) or {}).items()):
            console.print(f"  {label} {name}: {why}", style=style, markup=False)
    for record in orders.get("unreadable") or ():
        console.print(f"  unreadable {record}", style="bold yellow", markup=False)
