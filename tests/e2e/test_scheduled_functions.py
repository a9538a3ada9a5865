"""E2E: every scheduled function of the DEPLOYED stack, run the way AWS runs it, on the real clock.

The stack is deployed with cdklocal to a moto server (tests/e2e/conftest.py). moto fires no
EventBridge schedule and runs no Lambda code without Docker, so the test plays EventBridge: it
reads each deployed rule (schedule expression, target, constant ``Input``) from the server and
delivers exactly that event at the minute the rule fires (a rule without ``Input`` gets the
``Scheduled Event`` envelope); each delivery is a cold start of the deployed function's handler
in-process (its ``Handler`` string, its deployed environment, ``AWS_ENDPOINT_URL`` = the server).
The EMF lines a handler prints are put into the server's CloudWatch, as CloudWatch Logs would
extract them, and the deployed alarms are judged from their own definitions (moto evaluates none).

The substitutions: the machine is offline, so the ingest function reads the recorded Binance
and KuCoin data (``CST_DATA_SOURCE=recorded``) instead of calling ccxt, and the universe rules'
events ask for the seven most liquid pairs instead of a hundred (every pair ingests a year of
bars as its first run); the scan and the execution read the lake, exactly as deployed. The
registry of a new stack holds no promoted model, so the deployed scan orders nothing: the
hourly-cycle test runs the scan with the deployment's explicit opt-in to technical-only paper
trading (``CST_ALLOW_TECHNICAL_ONLY_TRADING=true``, ``allow_technical_only_trading`` in the
deployment config), which every row then states. The handlers run with their production
``SystemClock``; no ``at`` / ``asof`` field is ever sent. Recorded data ends in 2022, so for the
cycles that must fill, the process clock itself is moved (time-machine, ``tick=True``: time
keeps running between the code's own reads) to each scheduled minute of a day in 2021: the
hourly ingest at HH:02 writes only bars closed by then, the execution at HH:10 sees only the lake.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

from cst_devtools.local_deploy import DeployResult
from cst_devtools.moto_shims import alarm_breaches, emf_records, publish_emf
from tests.e2e.conftest import DEPLOY_GROUP

pytestmark = [pytest.mark.slow, pytest.mark.realdata, pytest.mark.xdist_group(DEPLOY_GROUP)]

REGION = "us-east-1"
DAY = datetime(2021, 11, 12, tzinfo=UTC)  # a day whose lake scan gates BUYs among the pairs
OFFLINE_EXCHANGES = ("kraken",)  # not recorded: only its failure path is exercised
UNIVERSE_PAIRS = 7  # the universe rules' max_pairs in this test (deployed: 100)
OPT_IN = "CST_ALLOW_TECHNICAL_ONLY_TRADING"
STACK = "CryptoSmartTrader"
_CRON = re.compile(r"^cron\((\S+) (\S+) \* \* \? \*\)$")


@dataclass
class Context:
    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    schedule: str
    function: str  # the target function's name
    event: dict[str, Any] | None  # the target's constant Input (None: the envelope)

    def fires_at(self, at: datetime) -> bool:
        match = _CRON.match(self.schedule)
        if match is None:
            return self.schedule == "rate(1 minute)"
        minute, hour = match.groups()
        return int(minute) == at.minute and (hour == "*" or int(hour) == at.hour)

    def delivered(self, at: datetime) -> dict[str, Any]:
        if self.event is not None and self.event.get("dataset") == "universe":
            return {**self.event, "max_pairs": UNIVERSE_PAIRS}  # see the module doc
        if self.event is not None:
            return self.event
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [self.arn],
            "detail": {},
        }


@dataclass
class Delivery:
    rule: Rule
    result: dict[str, Any] | None
    error: Exception | None
    points: int


class Stack:
    """The deployed stack as EventBridge and the Lambda runtime would drive it."""

    def __init__(self, deployed: DeployResult, data_dir: Path) -> None:
        self.endpoint = deployed.endpoint
        self.outputs = deployed.stack_outputs
        self.data_dir = data_dir
        client = boto3.session.Session().client
        kw = {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",  # moto checks none
            "aws_secret_access_key": "testing",
        }
        self.lambda_ = client("lambda", **kw)
        self.events = client("events", **kw)
        self.cloudwatch = client("cloudwatch", **kw)
        self.dynamodb = client("dynamodb", **kw)
        self.s3 = client("s3", **kw)
        self.ssm = client("ssm", **kw)
        self.rules = self._rules()
        self.warm: set[str] = set()  # functions with a warm execution environment
        self.opt_in = False  # the scan runs with the deployment's technical-only opt-in

    def _rules(self) -> list[Rule]:
        rules = []
        for rule in self.events.list_rules()["Rules"]:
            if "ScheduleExpression" not in rule:
                continue
            for target in self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                function = target["Arn"].rsplit(":", 1)[-1]
                event = json.loads(target["Input"]) if "Input" in target else None
                rules.append(
                    Rule(rule["Name"], rule["Arn"], rule["ScheduleExpression"], function, event)
                )
        return rules

    def rules_of(self, function_output: str) -> list[Rule]:
        name = self.outputs[function_output]
        return [r for r in self.rules if r.function == name]

    def reset(self, kill_switch_value: str) -> None:
        """A brand-new stack: empty tables and lake, the kill-switch as deployed, and every
        function cold."""
        self.warm.clear()
        self.opt_in = False
        for key in ("CSTORDERSTABLE", "CSTPOSITIONSTABLE", "CSTSTATETABLE"):
            table = self.outputs[key]
            schema = self.dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            keys = [k["AttributeName"] for k in schema]
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    self.dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})
        bucket = self.outputs["CSTLAKEBUCKET"]
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:  # a page holds at most 1000 keys, DeleteObjects' limit
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        self.ssm.put_parameter(
            Name=self.outputs["CSTKILLSWITCHPARAM"], Value=kill_switch_value, Overwrite=True
        )

    @contextmanager
    def _runtime(self, function: str) -> Iterator[tuple[Any, Context]]:
        """The deployed function's execution environment: its environment variables, and its
        handler module imported anew at its first invocation (a cold start); later invocations
        reuse it warm, as Lambda does. Each function's settings are its own (the shared
        settings caches are cleared at every switch, as separate processes would have them)."""
        config = self.lambda_.get_function(FunctionName=function)["Configuration"]
        env: dict[str, str] = {
            **config["Environment"]["Variables"],
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if config["Handler"].endswith("handlers.ingest.handler"):
            # the exchange, replaced by its recording (offline machine)
            env |= {"CST_DATA_SOURCE": "recorded", "CST_DATA_DIR": str(self.data_dir)}
        if config["Handler"].endswith("handlers.scan.handler") and self.opt_in:
            assert env[OPT_IN] == "false"  # as deployed: a new stack's scan trades nothing
            env |= {OPT_IN: "true"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            from cryptosmarttrader.handlers import _common

            _common.reset_caches()
            module_name, _, attr = config["Handler"].rpartition(".")
            module = importlib.import_module(module_name)
            if function not in self.warm:
                module = importlib.reload(module)
                self.warm.add(function)
            yield getattr(module, attr), Context(function, config["FunctionArn"])
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    def deliver(self, rule: Rule, at: datetime) -> Delivery:
        """EventBridge delivers the rule's event; the EMF output reaches CloudWatch."""
        out = io.StringIO()
        result: dict[str, Any] | None = None
        error: Exception | None = None
        with self._runtime(rule.function) as (handler, context), redirect_stdout(out):
            try:
                result = handler(rule.delivered(at), context)
            except Exception as exc:  # noqa: BLE001 - the Lambda runtime's error boundary
                error = exc
        points = publish_emf(self.cloudwatch, emf_records(out.getvalue()))
        return Delivery(rule, result, error, points)

    def tick(self, at: datetime, *, skip: tuple[str, ...] = ()) -> list[Delivery]:
        """Every rule that fires at ``at``'s minute, in a stable order."""
        due = [r for r in self.rules if r.fires_at(at) and not r.schedule.startswith("rate")]
        due = [r for r in due if not any(x in json.dumps(r.event) for x in skip)]
        return [self.deliver(r, at) for r in sorted(due, key=lambda r: r.name)]

    def datapoints(self, name: str, dims: dict[str, str], start: datetime) -> dict[str, float]:
        """Minute (``YYYY-MM-DDTHH:MM``) → maximum of ``name`` in the two days from ``start``."""
        got = self.cloudwatch.get_metric_statistics(
            Namespace="CryptoSmartTrader",
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
            StartTime=start,
            EndTime=start + timedelta(days=2),
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        return {_minute(d["Timestamp"]): d["Maximum"] for d in got}

    def alarm(self, short: str) -> str:
        (name,) = [
            a["AlarmName"]
            for a in self.cloudwatch.describe_alarms()["MetricAlarms"]
            if a["AlarmName"].startswith(f"{STACK}-") and a["AlarmName"].endswith(f"-{short}")
        ]
        return name


@pytest.fixture(scope="module")
def stack(deployed: DeployResult, data_dir: Path) -> Stack:
    return Stack(deployed, data_dir)


@pytest.fixture(scope="module")
def kill_switch_as_deployed(stack: Stack) -> str:
    """The value a brand-new stack's seed writes (off, "initial deployment"): not what the
    parameter holds now, which an earlier test on this deployment may have switched on (the
    go-live rollback does)."""
    from cryptosmarttrader.handlers.kill_switch_seed import initial_value

    return initial_value(datetime.now(tz=UTC))


def _minute(at: datetime | str) -> str:
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _near(minute: str, points: dict[str, float]) -> bool:
    before = _minute(datetime.fromisoformat(minute).replace(tzinfo=UTC) - timedelta(minutes=1))
    return minute in points or before in points


def _at(minute: str, points: dict[str, float]) -> float:
    before = _minute(datetime.fromisoformat(minute).replace(tzinfo=UTC) - timedelta(minutes=1))
    return points[minute] if minute in points else points[before]


def _one(deliveries: list[Delivery], function_output: str, stack: Stack) -> Delivery:
    name = stack.outputs[function_output]
    (found,) = [d for d in deliveries if d.rule.function == name]
    return found


def test_the_deployed_rules_are_the_schedules_the_test_drives(stack: Stack) -> None:
    # Every scheduled function has its rule on the server, with the constant input it sends
    assert {r.event["timeframe"] for r in stack.rules_of("IngestFunctionName") if r.event and
            "timeframe" in r.event} == {"1h", "1d"}  # fmt: skip
    (scan,) = stack.rules_of("ScanFunctionName")
    assert scan.event == {"top_n": 20} and scan.schedule == "cron(15 0 * * ? *)"
    (execution,) = stack.rules_of("ExecutionFunctionName")
    assert execution.event == {} and execution.schedule == "cron(10 * * * ? *)"
    (probe,) = stack.rules_of("HealthProbeFunctionName")
    assert probe.event is None and probe.schedule == "rate(1 minute)"


def test_a_brand_new_stack_on_the_true_clock(stack: Stack, kill_switch_as_deployed: str) -> None:
    # Given a brand-new stack (nothing ingested yet), now, no time travel
    stack.reset(kill_switch_as_deployed)
    started = datetime.now(UTC) - timedelta(minutes=1)
    (execution_rule,) = stack.rules_of("ExecutionFunctionName")
    (scan_rule,) = stack.rules_of("ScanFunctionName")
    (probe_rule,) = stack.rules_of("HealthProbeFunctionName")

    # When the hourly execution rule fires
    cycle = stack.deliver(execution_rule, datetime.now(UTC))
    # Then the cycle completes (not `rejected`), says it has no fresh market data
    assert cycle.error is None and cycle.result is not None, cycle.error
    assert cycle.result["status"] == "ok", cycle.result
    report = cycle.result["report"]
    assert report["market_data_fresh"] is False
    assert "no fresh market data" in report["market_data"]
    # and publishes the risk level the critical alarms watch, to the stack's CloudWatch
    risk = stack.datapoints("RiskLevel", {"service": "cst-execution"}, started)
    assert risk, "no RiskLevel datapoint reached CloudWatch"
    assert not alarm_breaches(stack.cloudwatch, stack.alarm("ExecutionStalled"),
                              datetime.now(UTC))  # fmt: skip

    # When the daily scan rule fires on the empty lake
    scan = stack.deliver(scan_rule, datetime.now(UTC))
    # Then the invocation fails, saying what it lacks, counts as an error and raises its alarm
    assert scan.error is not None and scan.result is None
    assert "no market data" in str(scan.error) and "has the daily ingest run?" in str(scan.error)
    errors = stack.datapoints("Errors", {"Stage": "staging"}, started)
    assert errors and max(errors.values()) >= 1
    assert alarm_breaches(stack.cloudwatch, stack.alarm("StageErrors"), datetime.now(UTC))

    # And the health probe's schedule (the EventBridge envelope, no Input) passes
    probe = stack.deliver(probe_rule, datetime.now(UTC))
    assert probe.result is not None and probe.result["passed"] is True, probe.result


def test_hourly_cycles_fill_and_move_the_book_on_a_moving_clock(
    stack: Stack, kill_switch_as_deployed: str
) -> None:
    # Given a brand-new stack and the process clock at 23:55 the day before DAY
    stack.reset(kill_switch_as_deployed)
    stack.opt_in = True  # a deployment that opts in to technical-only paper trading
    (execution_rule,) = stack.rules_of("ExecutionFunctionName")
    ingest = stack.outputs["IngestFunctionName"]
    reports: list[dict[str, Any]] = []
    with time_machine.travel(DAY - timedelta(minutes=10), tick=True) as clock:

        def at(hours: int, minute: int) -> datetime:
            target = DAY + timedelta(hours=hours, minutes=minute)
            clock.move_to(target)
            return target

        # 23:50 the universe rules, 23:55 market caps, 00:02 hourly ingest, 00:05 daily ingest:
        # bars closed by then
        universes = stack.tick(at(0, -10), skip=OFFLINE_EXCHANGES)
        assert len(universes) == 2, [d.rule.event for d in universes]
        for delivery in (*universes, *stack.tick(at(0, -5))):
            assert delivery.error is None and delivery.result["status"] == "ok", delivery.result
        hourly = stack.tick(at(0, 2), skip=OFFLINE_EXCHANGES)
        daily = stack.tick(at(0, 5))
        for delivery in (*hourly, *daily):
            assert delivery.rule.function == ingest
            assert delivery.error is None and delivery.result["status"] == "ok", delivery.result
            assert delivery.result["report"]["ingested"] > 0
        # the lake holds no bar that had not closed when the ingest ran
        lake_bars = hourly[0].result["report"]["symbols"]  # type: ignore[index]
        assert max(s["watermark_ms"] for s in lake_bars) + 3_600_000 <= int(
            (DAY + timedelta(minutes=2)).timestamp() * 1000
        )

        # 00:03: the Kraken rule cannot be served by this replay deployment (Binance and
        # KuCoin recorded only): the failed run is an error and raises its alarm; 00:04 KuCoin's
        # hourly candles of its stored universe
        offline = stack.tick(at(0, 3))
        assert len(offline) == len(OFFLINE_EXCHANGES)
        for delivery in offline:
            assert delivery.error is not None
            assert "replays binance and kucoin spot data only, not kraken" in str(delivery.error)
        (kucoin,) = stack.tick(at(0, 4))
        assert kucoin.error is None and kucoin.result["report"]["ingested"] > 0, kucoin.result
        assert alarm_breaches(stack.cloudwatch, stack.alarm("StageErrors"), at(0, 6))

        # 00:10 the first execution cycle of the stack; 00:15 the daily scan decides
        first = _one(stack.tick(at(0, 10)), "ExecutionFunctionName", stack)
        assert first.result is not None and first.result["status"] == "ok", first.error
        reports.append(first.result["report"])
        scan = _one(stack.tick(at(0, 15)), "ScanFunctionName", stack)
        assert scan.error is None and scan.result["status"] == "ok", scan.error
        decided = scan.result["report"]["orders_created"]
        assert decided >= 1, [
            (r["symbol"], r["action"], r["reasons"][-2:]) for r in scan.result["report"]["rows"]
        ]
        # no promoted model on a new stack: every row says it trades by the opt-in alone
        opted = f"no promoted model: technical agent only, paper trading allowed by {OPT_IN}=true"
        assert all(opted in r["reasons"] for r in scan.result["report"]["rows"])

        # then hour after hour: HH:02 the hourly ingest, HH:10 the execution cycle
        drift: Delivery | None = None
        for hour in (1, 2, 3, 4):
            for delivery in stack.tick(at(hour, 2), skip=OFFLINE_EXCHANGES):
                assert delivery.error is None, delivery.error
            cycle = stack.deliver(execution_rule, at(hour, 10))
            assert cycle.result is not None and cycle.result["status"] == "ok", cycle.error
            reports.append(cycle.result["report"])
            if hour == 2:  # 02:30 the daily drift check
                (drift,) = stack.tick(at(2, 30))

    # Then the decisions were sent at 01:10, none refused as untradable
    assert reports[1]["dispatched"] == decided and reports[1]["cancelled_new"] == 0
    # and filled on the real hourly bars as they closed: positions held at the end
    orders = stack.dynamodb.scan(TableName=stack.outputs["CSTORDERSTABLE"])["Items"]
    filled = {o["symbol"]["S"] for o in orders if o["status"]["S"] == "FILLED"}
    assert len(filled) == decided, [(o["symbol"], o["status"]) for o in orders]
    assert set(reports[-1]["positions"]) == filled
    assert reports[-1]["positions"], reports
    # and the equity moved with the market and the fees, from one hour to the next
    assert all(r["market_data_fresh"] for r in reports), [r["market_data"] for r in reports]
    equities = [r["equity"] for r in reports]
    assert equities[0] == 100_000.0
    assert equities[-1] != equities[0] and equities[-1] != equities[-2], equities
    assert reports[-1]["risk_level"] == "NORMAL"
    # and every cycle published its risk metrics at its own (moved) time; from the second
    # valuation on, the go-live tracking-error inputs too
    since = DAY - timedelta(hours=1)
    minutes = [_minute(r["at"]) for r in reports]
    risk = stack.datapoints("RiskLevel", {"service": "cst-execution"}, since)
    # (a datapoint's minute may be the one before the cycle's: the moving clock ticks with the
    # machine, and a loaded machine can stamp the EMF record a moment before the minute turns)
    assert all(_near(m, risk) for m in minutes), (minutes, sorted(risk))
    equity = stack.datapoints("Equity", {"service": "cst-execution"}, since)
    assert _at(minutes[-1], equity) == pytest.approx(equities[-1])
    returns = stack.datapoints("StrategyReturnBps", {"Stage": "staging"}, since)
    assert all(_near(m, returns) for m in minutes[1:]), (minutes, sorted(returns))
    # and the drift check had no production model to check on a new stack: skipped, not failed
    assert drift is not None and drift.result is not None, drift
    assert drift.result["status"] == "skipped"
