"""The idle bill: what the deployed stack costs per month in us-east-1 when nothing trades.

Everything that scales with the stack is read from its synthesized CloudFormation template:
every Lambda's memory, architecture and EventBridge schedule (``rate(...)``/``cron(...)``), the
ingest rules' exchanges and timeframes (they multiply the custom metrics), alarms and how many
metrics each one evaluates, dashboards, KMS keys, DynamoDB tables, log groups, Secrets Manager
secrets, API Gateway, Step Functions and SageMaker resources. What a template cannot say — how
long a run lasts, how many log bytes and table requests it makes — is in ``RUN_PROFILES``, each
figure with where it comes from. Prices are list prices (``PRICES``, dated, with their source
pages); the always-free tier is shown separately because an account shares it with everything
else it runs.

``docs/cost.md`` is this module's :func:`render_markdown` of the synthesized template
(``cst cost --markdown``); a test fails when the page and the template drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptosmarttrader.domain import metric_names as mn

DAYS_PER_MONTH: Final = 365.25 / 12
MINUTES_PER_MONTH: Final = DAYS_PER_MONTH * 24 * 60
PRICES_AS_OF: Final = "2026-12-03"


@dataclass(frozen=True, slots=True)
class Price:
    usd: float
    unit: str
    source: str


# us-east-1 list prices from the public AWS pricing pages (the pages named in ``source``),
# recorded on PRICES_AS_OF. Re-check them before relying on a figure.
PRICES: Final[Mapping[str, Price]] = {
    "lambda_request": Price(0.20 / 1e6, "request", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_s_x86_64": Price(
        0.0000166667, "GB-second (x86_64)", "https://aws.amazon.com/lambda/pricing/"
    ),
    "lambda_gb_s_arm64": Price(
        0.0000133334, "GB-second (arm64)", "https://aws.amazon.com/lambda/pricing/"
    ),
    "cw_custom_metric": Price(
        0.30, "metric-month (first 10,000)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cw_alarm_metric": Price(
        0.10, "standard-resolution alarm metric-month", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cw_alarm_metric_high_res": Price(
        0.30, "high-resolution alarm metric-month", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cw_dashboard": Price(3.00, "dashboard-month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "cw_logs_ingest": Price(
        0.50, "GB ingested (standard class)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cw_logs_storage": Price(
        0.03, "GB-month archived", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "xray_trace": Price(5.00 / 1e6, "trace recorded", "https://aws.amazon.com/xray/pricing/"),
    "ddb_write": Price(
        0.625 / 1e6,
        "write request unit (on demand)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "ddb_read": Price(
        0.125 / 1e6,
        "read request unit (on demand)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "ddb_storage": Price(0.25, "GB-month", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "ddb_pitr": Price(
        0.20,
        "GB-month of point-in-time recovery",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "s3_storage": Price(0.023, "GB-month (Standard)", "https://aws.amazon.com/s3/pricing/"),
    "s3_put": Price(
        0.005 / 1000, "PUT/COPY/POST/LIST request", "https://aws.amazon.com/s3/pricing/"
    ),
    "s3_get": Price(0.0004 / 1000, "GET request", "https://aws.amazon.com/s3/pricing/"),
    "kms_key": Price(1.00, "customer managed key-month", "https://aws.amazon.com/kms/pricing/"),
    "secret": Price(0.40, "secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "apigw_request": Price(
        3.50 / 1e6, "REST API request", "https://aws.amazon.com/api-gateway/pricing/"
    ),
    "cloudfront_https_request": Price(
        0.0100 / 10_000,
        "HTTPS request (United States, Europe)",
        "https://aws.amazon.com/cloudfront/pricing/",
    ),
    "cloudfront_data_out": Price(
        0.085,
        "GB to the internet (first 10 TB, United States)",
        "https://aws.amazon.com/cloudfront/pricing/",
    ),
    "sfn_transition": Price(
        0.025 / 1000, "standard state transition", "https://aws.amazon.com/step-functions/pricing/"
    ),
}

# The always-free tier (not the 12-month one), per account and month, shared with everything else
# the account runs: shown as a second total, never folded into the list-price lines.
FREE_TIER: Final[Mapping[str, float]] = {
    "lambda_request": 1_000_000,
    "lambda_gb_s": 400_000,
    "cw_custom_metric": 10,
    "cw_alarm_metric": 10,
    "cw_dashboard": 3,
    "cw_logs_gb": 5.0,
    "xray_trace": 100_000,
    "ddb_storage_gb": 25.0,
}


@dataclass(frozen=True, slots=True)
class RunProfile:
    """What one scheduled run of a handler costs besides its schedule and memory."""

    billed_seconds: float  # init (billed for zip functions since 2025-08) + handler run
    log_kb: float  # log bytes ingested per run, EMF metric records included
    ddb_reads: float  # read request units per run
    ddb_writes: float  # write request units per run
    s3_puts: float
    s3_gets: float
    source: str


# Per handler module. "estimate": no figure measured on AWS yet; replace with the REPORT lines'
# Billed Duration of a deployed stack (CloudWatch Logs Insights: stats avg(@billedDuration)).
RUN_PROFILES: Final[Mapping[str, RunProfile]] = {
    "cryptosmarttrader.handlers.health_probe.handler": RunProfile(
        0.5,
        3.0,
        2,
        0,
        0,
        1,
        "estimate: a warm run is three round trips (DynamoDB, S3, SSM) and the schedule keeps the "
        "environment warm; 0.5 s covers them plus an occasional cold start (no polars or numpy)",
    ),
    "cryptosmarttrader.handlers.ingest.handler": RunProfile(
        25.0,
        10.0,
        101,
        100,
        100,
        100,
        "estimate: an hourly run starts cold (ccxt + polars import ~2 s), reads the stored liquid "
        "universe, fetches the last closed candles of up to 100 pairs (~0.2 s each within ccxt's "
        "rate limit), merges one Parquet object per pair and writes its watermark",
    ),
    "cryptosmarttrader.handlers.execute.handler": RunProfile(
        6.0,
        6.0,
        20,
        2,
        0,
        8,
        "estimate: cold start (polars, numpy, TA-Lib), reads the open decisions, positions and "
        "risk state, the last hourly bars of held coins; with nothing to trade it writes only the "
        "risk state and equity",
    ),
    "cryptosmarttrader.handlers.scan.handler": RunProfile(
        30.0,
        20.0,
        20,
        25,
        0,
        800,
        "estimate: cold start, reads ~400 days of daily lake partitions per pair, quality gate, "
        "agents and ranking (the whole CoinGecko universe runs in 0.8 s warm locally: "
        "bench/bench_scan.py), records its decisions",
    ),
    "cryptosmarttrader.handlers.drift.handler": RunProfile(
        30.0,
        10.0,
        5,
        2,
        1,
        800,
        "estimate: like a scan (lake reads, features), then tree evaluation and PSI/KS",
    ),
}
DEFAULT_PROFILE: Final = RunProfile(
    5.0, 5.0, 5, 5, 0, 10, "estimate: a handler with no profile of its own"
)

# Metrics a scheduled run publishes only when something happens (a rejection, an error, an
# order): zero at idle. Every other metric of a scheduled function's service is published by
# every run.
EVENT_ONLY_METRICS: Final = frozenset(
    {
        "CandlesRejected",
        "QualityWarnings",
        "MarketCapsRejected",
        "ExchangeErrors",
        "RejectedEvents",
        "OrdersSent",
        "OrdersFilled",
        "OrdersRejectedByExchange",
        "OrdersRejectedByRisk",
        "SlippageBps",
        "OrderLatency",
        "OrdersReconciled",
        "OrdersCancelledByKillSwitch",
        "ColdStart",
        "ApiRequests",
        "ApiLatency",
        "KillSwitchEngaged",
        # counted only when what they count happens (an error, a refusal, a protective order)
        "PositionExitErrors",
        "ScanExitErrors",
        "OversellRefused",
        "ProtectiveStopsPlaced",
        "ProtectiveStopsCancelled",
        "TakeProfitsPlaced",
        "VenueKeysRefused",
        "ReadOnlyKeysRefused",
        "BookRecordsUnreadable",
    }
)
# Metric dimensions whose values are not read from the template: one value at idle.
SINGLE_VALUED_DIMENSIONS: Final = frozenset({"agent", "ModelGroup", "Stage", "rule", "kind"})
LAKE_GB: Final = 1.0  # a year of hourly candles of the scheduled pairs is a few MB: 1 GB bounds it
# The built web dashboard (HTML, scripts, uPlot; `cst web publish` keeps the previous build one
# more publish): well under a MB a build, 10 MB bounds both.
SITE_GB: Final = 0.01
TABLE_GB: Final = 0.1


class TemplateError(ValueError):
    """The template lacks something the estimate needs (a malformed schedule, a bad resource)."""


@dataclass(frozen=True, slots=True)
class LineItem:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float
    basis: str


@dataclass(frozen=True, slots=True)
class Estimate:
    items: tuple[LineItem, ...]
    free_tier_usd: float  # what the always-free tier takes off the total
    above_target: tuple[str, ...]  # the services that keep the bill over the target

    @property
    def total_usd(self) -> float:
        return sum(i.usd for i in self.items)

    def by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.service] = totals.get(item.service, 0.0) + item.usd
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


TARGET_USD: Final = 5.0


# ------------------------------------------------------------------------------- schedules


def _count_field(field: str, low: int, high: int) -> int:
    """How many values a cron field takes in ``[low, high]``."""
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in {"*", "?"}:
            start, end = low, high
        elif "-" in part:
            start, end = (int(v) for v in part.split("-", 1))
        else:
            start = end = int(part)
            if step != 1:
                end = high
        values.update(range(start, end + 1, step))
    return len(values)


def runs_per_month(expression: str) -> float:
    """Runs of an EventBridge ``rate(...)`` or ``cron(...)`` schedule in an average month."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        every = int(rate.group(1)) * {"m": 1, "h": 60, "d": 1440}[rate.group(2)[0]]
        return MINUTES_PER_MONTH / every
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)", expression)
    if not cron:
        raise TemplateError(f"unsupported schedule expression {expression!r}")
    minute, hour, dom, month, dow = cron.groups()[:5]
    if {dom, month, dow} - {"*", "?"}:
        raise TemplateError(f"only daily cron schedules are modelled, got {expression!r}")
    try:
        per_day = _count_field(minute, 0, 59) * _count_field(hour, 0, 23)
    except ValueError as error:
        raise TemplateError(f"unreadable cron field in {expression!r}") from error
    return per_day * DAYS_PER_MONTH


# -------------------------------------------------------------------------------- template


def _resources(template: Mapping[str, Any], cfn_type: str) -> dict[str, Mapping[str, Any]]:
    resources: Mapping[str, Any] = template.get("Resources", {})
    return {k: r.get("Properties", {}) for k, r in resources.items() if r.get("Type") == cfn_type}


@dataclass(frozen=True, slots=True)
class ScheduledFunction:
    logical_id: str
    handler: str
    memory_mb: int
    architecture: str
    tracing: bool
    runs: float  # per month, all its rules together


def scheduled_functions(template: Mapping[str, Any]) -> list[ScheduledFunction]:
    """Every Lambda with its monthly scheduled runs (0 for those only invoked on demand)."""
    runs: dict[str, float] = {}
    for rule in _resources(template, "AWS::Events::Rule").values():
        expression = rule.get("ScheduleExpression")
        if not expression or rule.get("State", "ENABLED") != "ENABLED":
            continue
        for target in rule.get("Targets", []):
            arn = target.get("Arn", {})
            if isinstance(arn, Mapping) and "Fn::GetAtt" in arn:
                function_id = arn["Fn::GetAtt"][0]
                runs[function_id] = runs.get(function_id, 0.0) + runs_per_month(expression)
    functions = []
    for logical_id, props in sorted(_resources(template, "AWS::Lambda::Function").items()):
        functions.append(
            ScheduledFunction(
                logical_id,
                str(props.get("Handler", "?")),
                int(props.get("MemorySize", 128)),
                str((props.get("Architectures") or ["x86_64"])[0]),
                props.get("TracingConfig", {}).get("Mode") == "Active",
                runs.get(logical_id, 0.0),
            )
        )
    return functions


def _rule_inputs(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    inputs = []
    for rule in _resources(template, "AWS::Events::Rule").values():
        for target in rule.get("Targets", []):
            if isinstance(target.get("Input"), str):
                inputs.append(json.loads(target["Input"]))
    return inputs


def idle_custom_metrics(template: Mapping[str, Any]) -> dict[str, int]:
    """Custom metric series published at idle, per metric name (dimension combinations)."""
    services = {
        _service_of(template, f.logical_id) for f in scheduled_functions(template) if f.runs > 0
    }
    candles = {(i["exchange"], i["timeframe"]) for i in _rule_inputs(template) if "timeframe" in i}
    cap_exchanges = {
        i["exchange"] for i in _rule_inputs(template) if i.get("dataset") == "market_caps"
    }
    exchanges = {e for e, _ in candles} | cap_exchanges
    series: dict[str, int] = {}
    for spec in mn.CATALOGUE:
        if not spec.producers or spec.name in EVENT_ONLY_METRICS:
            continue
        if spec.service is not None and spec.service not in services:
            continue
        if spec.service is None and not _sli_published(spec, services):
            continue
        dims = set(spec.dimensions)
        if {"exchange", "timeframe"} <= dims:
            count = len(candles)
        elif "exchange" in dims:
            count = len(cap_exchanges if spec.name.startswith("MarketCap") else exchanges)
        else:
            count = 1
        unknown = dims - {"exchange", "timeframe"} - SINGLE_VALUED_DIMENSIONS
        if unknown:
            raise TemplateError(f"{spec.name}: no idle cardinality for dimensions {unknown}")
        series[spec.name] = max(series.get(spec.name, 0), count)
    return series


_SLI_SERVICES: Final = {
    "services/health.py": mn.HEALTH_PROBE,
    "services/scan.py": mn.SCAN,
    "handlers/scan.py": mn.SCAN,
    "services/trading_cycle.py": mn.EXECUTION,
    "handlers/execute.py": mn.EXECUTION,
    "handlers/api.py": mn.API,
}


def _sli_published(spec: mn.MetricSpec, services: set[str]) -> bool:
    return any(_SLI_SERVICES.get(p) in services for p in spec.producers)


def _service_of(template: Mapping[str, Any], logical_id: str) -> str:
    props = _resources(template, "AWS::Lambda::Function")[logical_id]
    variables = props.get("Environment", {}).get("Variables", {})
    return str(variables.get("POWERTOOLS_SERVICE_NAME", logical_id))


def alarm_metrics(template: Mapping[str, Any]) -> tuple[int, int]:
    """(standard, high-resolution) alarm metrics: a metric-math alarm pays per metric it reads."""
    standard = high = 0
    for props in _resources(template, "AWS::CloudWatch::Alarm").values():
        stats = [m["MetricStat"] for m in props.get("Metrics", []) if "MetricStat" in m]
        periods = [int(s.get("Period", 60)) for s in stats] or [int(props.get("Period", 60))]
        for period in periods:
            if period < 60:
                high += 1
            else:
                standard += 1
    return standard, high


# -------------------------------------------------------------------------------- estimate


def estimate(template: Mapping[str, Any]) -> Estimate:
    items: list[LineItem] = []
    add = items.append
    functions = scheduled_functions(template)
    gb_seconds = 0.0
    requests = 0.0
    log_gb = 0.0
    traces = 0.0
    ddb_reads = ddb_writes = s3_puts = s3_gets = 0.0
    for f in functions:
        if f.runs == 0:
            continue
        profile = RUN_PROFILES.get(f.handler, DEFAULT_PROFILE)
        fn_gb_s = f.runs * profile.billed_seconds * f.memory_mb / 1024
        price = PRICES[f"lambda_gb_s_{f.architecture}"]
        add(
            LineItem(
                "Lambda",
                f"{f.handler.rsplit('.', 2)[-2]} ({f.memory_mb} MB {f.architecture})",
                f.runs,
                "runs",
                fn_gb_s * price.usd + f.runs * PRICES["lambda_request"].usd,
                f"{f.runs:,.0f} runs × {profile.billed_seconds:g} s × {f.memory_mb / 1024:g} GB; "
                + profile.source,
            )
        )
        gb_seconds += fn_gb_s
        requests += f.runs
        log_gb += f.runs * profile.log_kb / 1024**2
        traces += f.runs if f.tracing else 0
        ddb_reads += f.runs * profile.ddb_reads
        ddb_writes += f.runs * profile.ddb_writes
        s3_puts += f.runs * profile.s3_puts
        s3_gets += f.runs * profile.s3_gets
    on_demand = [f for f in functions if f.runs == 0]
    add(
        LineItem(
            "Lambda",
            f"{len(on_demand)} functions invoked on demand only",
            0,
            "runs",
            0.0,
            "API, alarm kill-switch, go-live and model canary steps: no request, no charge",
        )
    )

    metrics = idle_custom_metrics(template)
    n_metrics = sum(metrics.values())
    add(
        LineItem(
            "CloudWatch",
            "custom metrics (EMF)",
            n_metrics,
            "metric series",
            n_metrics * PRICES["cw_custom_metric"].usd,
            f"{len(metrics)} metric names published by the scheduled runs; per-exchange and "
            "per-timeframe dimensions from the ingest rules multiply them",
        )
    )
    standard, high = alarm_metrics(template)
    n_alarms = len(_resources(template, "AWS::CloudWatch::Alarm"))
    add(
        LineItem(
            "CloudWatch",
            f"{n_alarms} alarms",
            standard + high,
            "alarm metrics",
            standard * PRICES["cw_alarm_metric"].usd
            + high * PRICES["cw_alarm_metric_high_res"].usd,
            "a metric-math alarm pays for every metric it reads (the per-function error, "
            "throttle and dead-letter alarms read one metric per function or queue)",
        )
    )
    dashboards = len(_resources(template, "AWS::CloudWatch::Dashboard"))
    add(
        LineItem(
            "CloudWatch",
            "dashboards",
            dashboards,
            "dashboards",
            dashboards * PRICES["cw_dashboard"].usd,
            "switch off with -c cst:config='{\"dashboards\": false}'",
        )
    )
    log_groups = _resources(template, "AWS::Logs::LogGroup")
    retention = max((int(p.get("RetentionInDays", 30)) for p in log_groups.values()), default=30)
    stored_gb = log_gb * min(retention, 30) / 30  # the scheduled functions' groups keep 30 days
    add(
        LineItem(
            "CloudWatch",
            f"logs ({len(log_groups)} log groups)",
            log_gb,
            "GB ingested",
            log_gb * PRICES["cw_logs_ingest"].usd + stored_gb * PRICES["cw_logs_storage"].usd,
            "per-run log bytes from the run profiles (JSON logs, EMF records, REPORT lines)",
        )
    )
    add(
        LineItem(
            "X-Ray",
            "active tracing",
            traces,
            "traces",
            traces * PRICES["xray_trace"].usd,
            "one trace per scheduled run of a traced function",
        )
    )

    tables = _resources(template, "AWS::DynamoDB::Table")
    pitr = sum(
        1
        for p in tables.values()
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
    )
    add(
        LineItem(
            "DynamoDB",
            f"{len(tables)} on-demand tables",
            ddb_reads + ddb_writes,
            "request units",
            ddb_reads * PRICES["ddb_read"].usd
            + ddb_writes * PRICES["ddb_write"].usd
            + len(tables) * TABLE_GB * PRICES["ddb_storage"].usd
            + pitr * TABLE_GB * PRICES["ddb_pitr"].usd,
            f"requests from the run profiles; {TABLE_GB:g} GB per table stored, "
            f"{pitr} with point-in-time recovery",
        )
    )
    buckets = _resources(template, "AWS::S3::Bucket")
    distributions = _resources(template, "AWS::CloudFront::Distribution")
    site_gb = SITE_GB if distributions else 0.0
    add(
        LineItem(
            "S3",
            f"{len(buckets)} buckets (lake, "
            + ("dashboard site and CDN logs, " if distributions else "")
            + "access logs)",
            s3_puts + s3_gets,
            "requests",
            (LAKE_GB + site_gb) * PRICES["s3_storage"].usd
            + s3_puts * PRICES["s3_put"].usd
            + s3_gets * PRICES["s3_get"].usd,
            f"{LAKE_GB:g} GB stored bounds the lake"
            + (f", {site_gb * 1000:g} MB the dashboard's two kept builds" if distributions else "")
            + "; requests from the run profiles",
        )
    )
    if distributions:
        add(
            LineItem(
                "CloudFront",
                f"{len(distributions)} distribution (web dashboard)"
                if len(distributions) == 1
                else f"{len(distributions)} distributions (web dashboard)",
                0,
                "requests",
                0.0,
                "no request while nobody opens the dashboard; then "
                f"${PRICES['cloudfront_https_request'].usd * 10_000:.4f} per 10,000 HTTPS "
                f"requests and ${PRICES['cloudfront_data_out'].usd:.3f} per GB served (the "
                "always-free tier covers 10 M requests and 1 TB a month); `cst web publish` "
                "invalidations are free up to 1,000 paths a month",
            )
        )
    keys = _resources(template, "AWS::KMS::Key")
    add(
        LineItem(
            "KMS",
            f"{len(keys)} customer managed keys",
            len(keys),
            "keys",
            len(keys) * PRICES["kms_key"].usd,
            "the SNS alert topics' encryption keys; requests only when an alert is published",
        )
    )
    secrets = _resources(template, "AWS::SecretsManager::Secret")
    add(
        LineItem(
            "Secrets Manager",
            f"{len(secrets)} secrets",
            len(secrets),
            "secrets",
            len(secrets) * PRICES["secret"].usd,
            (
                "exchange API keys: the ingest function's read-only keys (`read_only_keys`) and, "
                "with venue_mode testnet or live, the execution function's trading keys"
            )
            if secrets
            else "exchange keys are not created by the stack (paper trading only)",
        )
    )
    apis = _resources(template, "AWS::ApiGateway::RestApi")
    add(
        LineItem(
            "API Gateway",
            f"{len(apis)} REST API",
            0,
            "requests",
            0.0,
            f"${PRICES['apigw_request'].usd * 1e6:.2f} per million requests; no request at idle "
            "(the health probe checks DynamoDB, S3 and SSM directly)",
        )
    )
    machines = _resources(template, "AWS::StepFunctions::StateMachine")
    add(
        LineItem(
            "Step Functions",
            f"{len(machines)} standard state machines",
            0,
            "transitions",
            0.0,
            "go-live and model canary run on demand only "
            f"(${PRICES['sfn_transition'].usd * 1000:.3f} per 1,000 transitions)",
        )
    )
    groups = _resources(template, "AWS::SageMaker::ModelPackageGroup")
    endpoints = _resources(template, "AWS::SageMaker::Endpoint")
    add(
        LineItem(
            "SageMaker",
            f"{len(groups)} model package group, {len(endpoints)} endpoints",
            0,
            "endpoints",
            0.0,
            "the registry is free; the serverless endpoints (the classifier's, created on `cst "
            "model promote`; the ranking model's, created on its promotion when "
            "`ranking_endpoint` is set) bill per inference and nothing while idle",
        )
    )
    queues = _resources(template, "AWS::SQS::Queue")
    topics = _resources(template, "AWS::SNS::Topic")
    add(
        LineItem(
            "SQS, SNS, SSM, EventBridge",
            f"{len(queues)} dead-letter queues, {len(topics)} topics, schedules",
            0,
            "requests",
            0.0,
            "messages only on failures and alarms; standard SSM parameters and scheduled rules "
            "are free",
        )
    )

    free = (
        min(requests, FREE_TIER["lambda_request"]) * PRICES["lambda_request"].usd
        + min(gb_seconds, FREE_TIER["lambda_gb_s"]) * PRICES["lambda_gb_s_x86_64"].usd
        + min(n_metrics, FREE_TIER["cw_custom_metric"]) * PRICES["cw_custom_metric"].usd
        + min(standard, FREE_TIER["cw_alarm_metric"]) * PRICES["cw_alarm_metric"].usd
        + min(dashboards, FREE_TIER["cw_dashboard"]) * PRICES["cw_dashboard"].usd
        + min(log_gb, FREE_TIER["cw_logs_gb"]) * PRICES["cw_logs_ingest"].usd
        + min(traces, FREE_TIER["xray_trace"]) * PRICES["xray_trace"].usd
        + min(len(tables) * TABLE_GB, FREE_TIER["ddb_storage_gb"]) * PRICES["ddb_storage"].usd
    )
    above: list[str] = []
    running = sum(i.usd for i in items)
    for item in sorted(items, key=lambda i: -i.usd):
        if running <= TARGET_USD:
            break
        above.append(f"{item.service} {item.item} ({_usd(item.usd)})")
        running -= item.usd
    return Estimate(tuple(items), free, tuple(above))


# ------------------------------------------------------------------------------- rendering


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def render_markdown(result: Estimate) -> str:
    """The ``docs/cost.md`` page for this estimate (deterministic: no date of the run)."""
    lines = [
        "# The idle bill",
        "",
        "<!-- Generated by `uv run cst cost --markdown > docs/cost.md` from the synthesized "
        "template; a test fails when it drifts. Do not edit by hand. -->",
        "",
        "What the deployed stack costs per month in **us-east-1** with no trading: the schedules "
        "run (ingest, execution cycle, daily scan and drift check, health probe), nothing is "
        "ordered, nobody calls the API. Read from the synthesized CloudFormation template by "
        "`cst cost` (`functions/cryptosmarttrader/services/cost.py`): every Lambda's schedule, "
        "memory and architecture, the alarms and the metrics each reads, dashboards, keys, "
        "tables, buckets.",
        "",
        f"**Total at list prices: {_usd(result.total_usd)} per month** "
        f"({_usd(result.total_usd - result.free_tier_usd)} if the account's always-free tier is "
        f"still unused: it takes {_usd(result.free_tier_usd)} off, but it is shared with "
        "everything else the account runs).",
        "",
        "| service | monthly |",
        "| --- | ---: |",
        *(f"| {service} | {_usd(usd)} |" for service, usd in result.by_service().items()),
        "",
    ]
    if result.above_target:
        lines += [
            f"## Why it is above {_usd(TARGET_USD)}",
            "",
            "Without trading, the bill is observability, not compute. In order of size: "
            + ", ".join(result.above_target)
            + ". What a user can switch off:",
            "",
            "* **Dashboards**: `npx --yes aws-cdk@2 deploy -c cst:config='{\"dashboards\": false}'` "
            "keeps every alarm and metric and drops the four dashboards ($3.00 each; three are "
            "free per account under the always-free tier). The metrics stay browsable in the "
            "CloudWatch console.",
            '* **Health probe cadence**: `"probe_every_minutes": 5` in the same `cst:config` '
            "object cuts the probe's runs, logs and traces by five (the uptime SLI then has one "
            "sample per 5 minutes; the probe alarm follows the cadence).",
            "* **Custom metrics** are the largest line: each metric name is billed once per "
            "dimension combination, and the ingest metrics carry exchange and timeframe. Dropping "
            "an exchange or timeframe from `ingest_schedules` removes its series; fewer "
            "dimensions would need a code change and would blind the per-exchange staleness "
            "alarm.",
            "* **Alarms** read one metric per function or queue (errors, throttles, dead "
            "letters): $0.10 per metric. They guard the kill-switch path; keep them.",
            "* **KMS keys** ($1.00 each) encrypt the alert topics. CloudWatch alarms can only "
            "publish to an encrypted topic whose key policy lets CloudWatch use the key, which "
            "an AWS managed key does not: keep them.",
            "",
        ]
    lines += [
        "## Line items",
        "",
        "| service | item | quantity | monthly | basis |",
        "| --- | --- | ---: | ---: | --- |",
        *(
            f"| {i.service} | {i.item} | {i.quantity:,.0f} {i.unit} | {_usd(i.usd)} | {i.basis} |"
            for i in result.items
        ),
        "",
        "## Prices",
        "",
        f"us-east-1 list prices recorded on {PRICES_AS_OF} from the pages named below. The "
        "always-free tier (10 custom metrics, 10 alarm metrics, 3 dashboards, 5 GB of logs, "
        "100,000 traces, 1 M Lambda requests and 400,000 GB-s, 25 GB of DynamoDB storage) is "
        "per account.",
        "",
        "| price | per | source |",
        "| --- | --- | --- |",
        *(
            f"| {name} | ${p.usd:.10g} per {p.unit} | {p.source} |"
            for name, p in sorted(PRICES.items())
        ),
        "",
        "## Run durations",
        "",
        "Lambda has billed the init phase of zip functions since August 2025, so an hourly run "
        "that starts cold pays for its imports. The figures below are estimates until a deployed "
        "stack's REPORT lines replace them (CloudWatch Logs Insights: "
        "`stats avg(@billedDuration), count(*) by bin(1d)`).",
        "",
        "| handler | billed s per run | log KB | basis |",
        "| --- | ---: | ---: | --- |",
        *(
            f"| `{h}` | {p.billed_seconds:g} | {p.log_kb:g} | {p.source} |"
            for h, p in sorted(RUN_PROFILES.items())
        ),
        "",
    ]
    return "\n".join(lines)


def summary_rows(result: Estimate) -> Sequence[tuple[str, str]]:
    return [(service, _usd(usd)) for service, usd in result.by_service().items()]
