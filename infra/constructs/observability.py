"""Alarms with severities, alert topics, the alarm kill-switch function and dashboards.

Severities: **critical** alarms notify the encrypted critical topic AND invoke the kill-switch
function (CloudWatch Lambda alarm action), which turns trading off; **warning** alarms notify
the warning topic; **info** alarms only show on the dashboards. Metric names, units and
dimensions come from ``cryptosmarttrader.domain.metric_names`` (the catalogue the functions emit
through Powertools EMF; Powertools adds the ``service`` dimension, except to the go-live SLIs,
which carry ``Stage`` only and are charted for this deployment's stage). Threshold alarms treat
missing data as not breaching (no fill is no slippage); the heartbeat alarms of the scheduled
functions (execution, scan, ingest), the staleness and the health-probe alarms treat it as
BREACHING, with periods derived from each schedule (see docs/observability.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.slo import STAGE_DIMENSION, SloThresholds
from infra.config import Cron, DeploymentConfig
from infra.constructs.bundling import LambdaCode
from infra.constructs.grants import grant_table
from infra.constructs.kill_switch import KillSwitch
from infra.constructs.python_function import PythonFunction
from infra.constructs.state_tables import StateTables

ALARM_KILLSWITCH_HANDLER: Final = "cryptosmarttrader.handlers.alarm_killswitch.handler"
ALARM_KILLSWITCH_SERVICE: Final = mn.ALARM_KILLSWITCH
ALARM_RESERVED_CONCURRENCY: Final = 3
MAX_METRICS_PER_ALARM: Final = 10  # CloudWatch limit for metric-math alarms
API_P95_LATENCY_MS: Final = 1000.0
DRAWDOWN_PCT: Final = 10.0
DAILY_LOSS_PCT: Final = -5.0
RISK_EMERGENCY_LEVEL: Final = 3.0
SLIPPAGE_P95_BPS: Final = 50.0
STALE_BARS: Final = 2.0
PROBE_INTERVALS_WITHOUT_SUCCESS: Final = 3
SLO: Final = SloThresholds()  # the go-live gates' default objectives, drawn on the SLO board

Severity = Literal["critical", "warning", "info"]
_TIMEFRAME_SECONDS: Final = {"1h": 3600, "4h": 14_400, "1d": 86_400}


def emf(spec: mn.MetricSpec, statistic: str, period: Duration, **dims: str) -> cw.Metric:
    """A catalogue metric with the dimension set Powertools emits for it."""
    if spec.service is None:
        raise ValueError(f"{spec.name} is a go-live SLI without a service dimension: use sli()")
    missing = set(spec.dimensions) - set(dims)
    if missing:
        raise ValueError(
            f"{spec.name} is emitted with dimensions {spec.dimensions}; missing {missing}"
        )
    return cw.Metric(
        namespace=mn.NAMESPACE,
        metric_name=spec.name,
        dimensions_map={"service": spec.service, **dims},
        statistic=statistic,
        period=period,
    )


def sli(spec: mn.MetricSpec, statistic: str, period: Duration, stage: str) -> cw.Metric:
    """A go-live SLI of ``stage``, dimensioned ``Stage`` only, exactly as the SLO gate reads it."""
    if not spec.is_sli:
        raise ValueError(f"{spec.name} is not a go-live SLI: use emf()")
    return cw.Metric(
        namespace=mn.NAMESPACE,
        metric_name=spec.name,
        dimensions_map={STAGE_DIMENSION: stage},
        statistic=statistic,
        period=period,
    )


def metric_sum(label: str, metrics: Sequence[cw.IMetric], period: Duration) -> cw.IMetric:
    if not metrics:
        raise ValueError(f"{label}: no metrics to add up")
    if len(metrics) == 1:
        return metrics[0]
    using = {f"m{i}": m for i, m in enumerate(metrics)}
    return cw.MathExpression(
        expression="+".join(f"FILL(m{i}, 0)" for i in range(len(metrics))),
        using_metrics=using,
        label=label,
        period=period,
    )


@dataclass(frozen=True)
class AlarmSpec:
    id: str
    severity: Severity
    metric: cw.IMetric
    threshold: float
    comparison: cw.ComparisonOperator
    evaluation_periods: int
    description: str
    missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING
    datapoints_to_alarm: int | None = None


class Observability(Construct):
    """Topics (KMS-encrypted), the kill-switch function, 16+ alarms and four dashboards."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: LambdaCode,
        config: DeploymentConfig,
        tables: StateTables,
        kill_switch: KillSwitch,
        environment: Mapping[str, str],
        functions: Sequence[PythonFunction],
        rest_api: apigw.RestApi | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        stack_name = Stack.of(self).stack_name

        self.key = kms.Key(
            self,
            "AlertsKey",
            description="CryptoSmartTrader alarm topics (SNS server-side encryption)",
            enable_key_rotation=True,
        )
        # CloudWatch publishes alarm notifications to the encrypted topics.
        self.key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topics: dict[Severity, sns.Topic] = {
            severity: sns.Topic(
                self,
                f"{severity.capitalize()}Topic",
                display_name=f"CryptoSmartTrader {severity} alarms",
                master_key=self.key,
                enforce_ssl=True,
            )
            for severity in ("critical", "warning")
        }

        self.killswitch_lambda = PythonFunction(
            self,
            "AlarmKillSwitch",
            code=code,
            handler=ALARM_KILLSWITCH_HANDLER,
            description="Critical alarm → kill-switch on (actor alarm), audited",
            service_name=ALARM_KILLSWITCH_SERVICE,
            environment=environment,
            memory_mb=512,
            timeout=Duration.seconds(30),
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
            # its own share of the account's concurrency: it runs even when other functions
            # (or anything else in the account) exhaust the rest; room for several alarms at once
            reserved_concurrency=ALARM_RESERVED_CONCURRENCY,
        )
        kill_switch.parameter.grant_read(self.killswitch_lambda.role)
        kill_switch.parameter.grant_write(self.killswitch_lambda.role)
        grant_table(self.killswitch_lambda.role, tables.state, ["PutItem"])

        all_functions = [*functions, self.killswitch_lambda]
        self.alarms: dict[str, tuple[Severity, cw.Alarm]] = {}
        for spec in self._alarm_specs(all_functions, rest_api):
            self.alarms[spec.id] = (spec.severity, self._alarm(stack_name, spec))
        self.dashboards = (
            self._dashboards(stack_name, all_functions, rest_api) if config.dashboards else {}
        )

    # ------------------------------------------------------------------ alarms

    def _alarm(self, stack_name: str, spec: AlarmSpec) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            spec.id,
            alarm_name=f"{stack_name}-{spec.severity}-{spec.id}",
            alarm_description=f"[{spec.severity}] {spec.description}",
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm,
            treat_missing_data=spec.missing,
        )
        if spec.severity == "critical":
            alarm.add_alarm_action(cw_actions.SnsAction(self.topics["critical"]))
            alarm.add_alarm_action(cw_actions.LambdaAction(self.killswitch_lambda.function))
        elif spec.severity == "warning":
            alarm.add_alarm_action(cw_actions.SnsAction(self.topics["warning"]))
            alarm.add_ok_action(cw_actions.SnsAction(self.topics["warning"]))
        return alarm

    def _alarm_specs(
        self, functions: Sequence[PythonFunction], rest_api: apigw.RestApi | None
    ) -> list[AlarmSpec]:
        five, fifteen, hour = Duration.minutes(5), Duration.minutes(15), Duration.hours(1)
        gt = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
        gte = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        lt = cw.ComparisonOperator.LESS_THAN_THRESHOLD
        specs = [
            AlarmSpec(
                "Drawdown", "critical", emf(mn.DRAWDOWN, "Maximum", five), DRAWDOWN_PCT, gt, 1,
                f"drawdown above {DRAWDOWN_PCT:.0f}% of peak equity",
            ),
            AlarmSpec(
                "RiskGuardEmergency", "critical", emf(mn.RISK_LEVEL, "Maximum", five),
                RISK_EMERGENCY_LEVEL, gte, 1, "RiskGuard level at EMERGENCY or SHUTDOWN",
            ),
            AlarmSpec(
                "DailyLoss", "critical", emf(mn.DAILY_PNL, "Minimum", five), DAILY_LOSS_PCT, lt, 1,
                f"daily PnL below {DAILY_LOSS_PCT:.0f}% of the day-start equity",
            ),
            AlarmSpec(
                "DuplicateOrderAttempts", "critical",
                metric_sum("duplicate orders prevented", [
                    emf(mn.DUPLICATE_ORDERS_PREVENTED, "Sum", hour),
                    cw.Metric(namespace=mn.NAMESPACE, metric_name=mn.DUPLICATE_ORDERS_PREVENTED.name,
                              dimensions_map={"service": mn.EXECUTION}, statistic="Sum", period=hour),
                ], hour),
                float(3 * self._config.scan.top_n), gt, 1,
                "more repeated order decisions in an hour than three full scan reruns: a loop",
            ),
            AlarmSpec(
                "Oversell", "critical", emf(mn.OVERSELL_REFUSED, "Sum", hour), 1, gte, 1,
                "a sell was refused or cut because it would leave a spot position short",
            ),
            AlarmSpec(
                "BalanceDrift", "warning", emf(mn.BALANCE_DRIFT, "Maximum", hour), 1, gte, 1,
                "the venue account holds less than the positions ledger (RiskGuard DEFENSIVE)",
            ),
            AlarmSpec(
                "BookRecordsUnreadable", "warning",
                emf(mn.BOOK_RECORDS_UNREADABLE, "Sum", hour), 1, gte, 1,
                "a stored order or position cannot be read: the equity is unknown and every "
                "entry refused until it is repaired (`cst book check` names it)",
            ),
            AlarmSpec(
                "VenueKeysRefused", "warning", emf(mn.VENUE_KEYS_REFUSED, "Sum", hour), 1, gte, 1,
                "the live trading key may withdraw or transfer, or cannot trade spot: the "
                "execution cycle abstains",
            ),
            AlarmSpec(
                "ReadOnlyKeysRefused", "warning", emf(mn.READ_ONLY_KEYS_REFUSED, "Sum", hour),
                1, gte, 1,
                "the read-only keys may trade, withdraw or transfer: they are not used",
            ),
            AlarmSpec(
                "OrderRejections", "critical",
                emf(mn.ORDERS_REJECTED_BY_EXCHANGE, "Sum", fifteen), 5, gte, 1,
                "5+ orders rejected by the exchange in 15 minutes",
            ),
            AlarmSpec(
                "StaleData", "warning", self._staleness_in_bars(hour), STALE_BARS, gt, 2,
                f"newest closed candle older than {STALE_BARS:.0f} bars, or no ingest for 2 hours",
                missing=cw.TreatMissingData.BREACHING,
            ),
            AlarmSpec(
                "ExchangeErrors", "warning",
                metric_sum("exchange errors", [
                    emf(mn.EXCHANGE_ERRORS, "Sum", fifteen, exchange=ex, kind=kind)
                    for ex in sorted({s.exchange for s in self._config.ingest_schedules})
                    for kind in ("retryable", "fatal")
                ], fifteen),
                10, gte, 1, "10+ failed exchange calls in 15 minutes",
            ),
            AlarmSpec(
                "Slippage", "warning", emf(mn.SLIPPAGE, "p95", hour), SLIPPAGE_P95_BPS, gt, 1,
                f"p95 slippage above {SLIPPAGE_P95_BPS:.0f} bps over an hour",
            ),
        ]  # fmt: skip
        specs += self._heartbeat_alarms()
        probe_period = Duration.minutes(self._config.probe_every_minutes)
        specs.append(
            AlarmSpec(
                "HealthProbeFailing", "warning",
                sli(mn.PROBE_SUCCESS, "Sum", probe_period, self._config.stage), 1, lt,
                PROBE_INTERVALS_WITHOUT_SUCCESS,
                f"no passing deep health probe for {PROBE_INTERVALS_WITHOUT_SUCCESS} probe "
                "intervals: an AWS dependency fails, or the probe does not run",
                missing=cw.TreatMissingData.BREACHING,
            )
        )  # fmt: skip
        specs.append(
            AlarmSpec(
                "StageErrors", "warning",
                sli(mn.ERRORS, "Sum", five, self._config.stage), 1, gte, 1,
                "a scheduled run (ingest, scan, execution, drift) or an API request of this stage "
                "failed: the stage's Errors SLI; the function's log says what it lacked",
            )
        )  # fmt: skip
        specs += self._function_alarms(functions, five)
        if rest_api is not None:
            specs += [
                AlarmSpec(
                    "ApiLatencyP95", "warning",
                    rest_api.metric_latency(statistic="p95", period=five),
                    API_P95_LATENCY_MS, gt, 3,
                    f"API p95 latency above {API_P95_LATENCY_MS:.0f} ms for 15 minutes",
                ),
                AlarmSpec(
                    "Api5xx", "warning", rest_api.metric_server_error(statistic="Sum", period=five),
                    5, gte, 1, "5+ API server errors in 5 minutes",
                ),
                AlarmSpec(
                    "Api4xx", "info", rest_api.metric_client_error(statistic="Sum", period=five),
                    50, gte, 1, "50+ rejected API calls in 5 minutes (probing or a broken client)",
                ),
            ]  # fmt: skip
        specs.append(
            AlarmSpec(
                "QualityExclusions", "info",
                cw.MathExpression(
                    expression="100 * excluded / universe",
                    using_metrics={
                        "excluded": emf(mn.EXCLUDED_BY_QUALITY, "Maximum", hour),
                        "universe": emf(mn.UNIVERSE_SIZE, "Maximum", hour),
                    },
                    label="coins excluded by the quality gate (%)",
                    period=hour,
                ),
                10, gt, 1, "quality gate excluded more than 10% of the universe in a scan",
            )
        )  # fmt: skip
        return specs

    def _heartbeat_alarms(self) -> list[AlarmSpec]:
        """One alarm per scheduled function on the metric it emits once per COMPLETED run;
        missing data breaches, so a function that stops running (schedule disabled, every
        invocation failing, throttled, deleted) alarms instead of looking healthy."""
        config = self._config
        ingest_every = min(schedule_interval_seconds(s.cron) for s in config.ingest_schedules)
        beats = [
            # paper trading is not running and the critical risk alarms see no data
            ("ExecutionStalled", mn.RISK_LEVEL, schedule_interval_seconds(config.execution.cron),
             "no completed execution cycle (RiskLevel sample count)"),
            ("NoSignals", mn.UNIVERSE_SIZE, schedule_interval_seconds(config.scan.cron),
             "no completed scan published signals (UniverseSize sample count)"),
            ("IngestHeartbeat", mn.INGEST_RUNS, ingest_every,
             "no completed ingest run (IngestRuns sample count)"),
        ]  # fmt: skip
        specs = []
        for alarm_id, spec, every, what in beats:
            period, periods = heartbeat_window(every)
            silent = int(period.to_seconds()) * periods
            specs.append(
                AlarmSpec(
                    alarm_id, "warning", emf(spec, "SampleCount", period), 1,
                    cw.ComparisonOperator.LESS_THAN_THRESHOLD, periods,
                    f"{what} for {silent // 3600} h (scheduled every {every // 3600} h)",
                    missing=cw.TreatMissingData.BREACHING,
                )
            )  # fmt: skip
        return specs

    def _staleness_in_bars(self, period: Duration) -> cw.IMetric:
        using: dict[str, cw.IMetric] = {}
        terms = []
        for i, s in enumerate(self._config.ingest_schedules):
            using[f"s{i}"] = emf(
                mn.DATA_STALENESS, "Maximum", period, exchange=s.exchange, timeframe=s.timeframe
            )
            terms.append(f"s{i} / {_TIMEFRAME_SECONDS[s.timeframe]}")
        return cw.MathExpression(
            expression=f"MAX([{', '.join(terms)}])",
            using_metrics=using,
            label="data staleness (bars)",
            period=period,
        )

    @staticmethod
    def _function_alarms(functions: Sequence[PythonFunction], period: Duration) -> list[AlarmSpec]:
        gte = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        specs: list[AlarmSpec] = []
        chunks = [
            functions[i : i + MAX_METRICS_PER_ALARM]
            for i in range(0, len(functions), MAX_METRICS_PER_ALARM)
        ]
        for n, chunk in enumerate(chunks):
            suffix = "" if len(chunks) == 1 else str(n + 1)
            fns = [f.function for f in chunk]
            specs.append(AlarmSpec(
                f"LambdaErrors{suffix}", "warning",
                metric_sum("Lambda errors", [f.metric_errors(statistic="Sum", period=period) for f in fns], period),
                1, gte, 1, "a Lambda invocation failed (see the function's logs and DLQ)",
            ))  # fmt: skip
            specs.append(AlarmSpec(
                f"LambdaThrottles{suffix}", "warning",
                metric_sum("Lambda throttles", [f.metric_throttles(statistic="Sum", period=period) for f in fns], period),
                1, gte, 1, "a Lambda invocation was throttled (concurrency exhausted)",
            ))  # fmt: skip
            specs.append(AlarmSpec(
                f"DeadLetters{suffix}", "warning",
                metric_sum("dead-lettered events", [
                    _visible(f.dead_letter_queue, period) for f in chunk
                ], period),
                1, gte, 1, "events failed every retry and wait in a dead-letter queue",
            ))  # fmt: skip
        return specs

    # ------------------------------------------------------------------ dashboards

    def _sli_widgets(self, period: Duration) -> list[cw.IWidget]:
        """The go-live SLIs of this deployment's stage, each against its gate objective."""
        stage = self._config.stage

        def math(label: str, expression: str, **using: cw.IMetric) -> cw.MathExpression:
            return cw.MathExpression(
                expression=expression, using_metrics=using, label=label, period=period
            )

        def panel(title: str, metric: cw.IMetric, objective: float) -> cw.GraphWidget:
            return cw.GraphWidget(
                title=f"[{stage}] {title}", left=[metric], width=6, height=6,
                left_annotations=[cw.HorizontalAnnotation(value=objective, label="SLO")],
            )  # fmt: skip

        ok, failed = (sli(s, "Sum", period, stage) for s in (mn.PROBE_SUCCESS, mn.PROBE_FAILURE))
        requests, errors = (sli(s, "Sum", period, stage) for s in (mn.REQUESTS, mn.ERRORS))
        budget = 1 - SLO.availability_objective
        return [
            panel(f"Uptime: passing health probes % (≥ {SLO.min_uptime:.1%})",
                  math("uptime (%)", "100 * ok / (ok + failed)", ok=ok, failed=failed),
                  100 * SLO.min_uptime),
            panel(f"Decision latency p95, ms (< {SLO.max_p95_latency_ms:g})",
                  sli(mn.DECISION_LATENCY, "p95", period, stage), SLO.max_p95_latency_ms),
            panel(f"Error-budget burn rate (≤ {SLO.max_burn_rate:g}x)",
                  math("burn rate", f"(errors / requests) / {budget:g}",
                       errors=errors, requests=requests),
                  SLO.max_burn_rate),
            cw.GraphWidget(title=f"[{stage}] Requests / errors", left=[requests, errors],
                           width=6, height=6),
        ]  # fmt: skip

    def _dashboards(
        self,
        stack_name: str,
        functions: Sequence[PythonFunction],
        rest_api: apigw.RestApi | None,
    ) -> dict[str, cw.Dashboard]:
        five, hour = Duration.minutes(5), Duration.hours(1)

        def graph(title: str, *metrics: cw.IMetric, width: int = 8) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(metrics), width=width, height=6)

        def alarms_of(*ids: str) -> cw.AlarmStatusWidget:
            return cw.AlarmStatusWidget(
                title="Alarms",
                alarms=[self.alarms[i][1] for i in ids if i in self.alarms],
                width=24,
                height=3,
            )

        mode = self._config.venue_mode
        trading: list[list[cw.IWidget]] = [
            [cw.TextWidget(
                markdown=f"**Orders go to: {mode}** "
                + ("(real money)" if mode == "live" else "(no real money)")
                + f" · exchange {self._config.default_exchange} · stage {self._config.stage}",
                width=24, height=1,
            )],
            [alarms_of("Drawdown", "RiskGuardEmergency", "DailyLoss", "DuplicateOrderAttempts",
                       "OrderRejections", "Slippage", "ExecutionStalled")],
            [graph("Risk level (0 NORMAL … 4 SHUTDOWN)", emf(mn.RISK_LEVEL, "Maximum", five)),
             graph("Drawdown / daily PnL (%)", emf(mn.DRAWDOWN, "Maximum", five),
                   emf(mn.DAILY_PNL, "Minimum", five)),
             graph("Gross exposure (% equity)", emf(mn.GROSS_EXPOSURE, "Maximum", five))],
            [graph("Orders", emf(mn.ORDERS_CREATED, "Sum", hour),
                   cw.Metric(namespace=mn.NAMESPACE, metric_name=mn.ORDERS_SENT.name,
                             dimensions_map={"service": mn.EXECUTION}, statistic="Sum", period=hour),
                   cw.Metric(namespace=mn.NAMESPACE, metric_name=mn.ORDERS_FILLED.name,
                             dimensions_map={"service": mn.EXECUTION}, statistic="Sum", period=hour),
                   emf(mn.ORDERS_REJECTED_BY_EXCHANGE, "Sum", hour)),
             graph("Duplicates prevented", emf(mn.DUPLICATE_ORDERS_PREVENTED, "Sum", hour)),
             graph("Slippage p95 (bps) / order latency p95 (ms)", emf(mn.SLIPPAGE, "p95", hour),
                   emf(mn.ORDER_LATENCY, "p95", hour))],
        ]  # fmt: skip
        schedules = self._config.ingest_schedules
        data: list[list[cw.IWidget]] = [
            [alarms_of("StaleData", "ExchangeErrors", "QualityExclusions", "NoSignals",
                       "IngestHeartbeat")],
            [graph("Candles ingested", *[emf(mn.CANDLES_INGESTED, "Sum", hour, exchange=s.exchange,
                                             timeframe=s.timeframe) for s in schedules]),
             graph("Data staleness (bars)", self._staleness_in_bars(hour)),
             graph("Ingest latency p95 (ms)", *[emf(mn.INGEST_LATENCY, "p95", hour,
                                                    exchange=s.exchange, timeframe=s.timeframe)
                                                for s in schedules])],
            [graph("Universe / excluded by quality", emf(mn.UNIVERSE_SIZE, "Maximum", hour),
                   emf(mn.EXCLUDED_BY_QUALITY, "Maximum", hour)),
             graph("Skipped by circuit breaker", *[emf(mn.INGEST_SKIPPED, "Sum", hour,
                                                       exchange=s.exchange, timeframe=s.timeframe)
                                                   for s in schedules])],
        ]  # fmt: skip
        ml: list[list[cw.IWidget]] = [
            [graph("Agent abstentions", emf(mn.AGENT_ABSTENTIONS, "Sum", hour)),
             graph("Gated decisions (confidence ≥ gate)", emf(mn.GATED_DECISIONS, "Sum", hour)),
             graph("Agent votes / mean confidence", *[
                 emf(mn.AGENT_VOTES, "Sum", hour, agent="technical"),
                 emf(mn.AGENT_CONFIDENCE, "Average", hour, agent="technical")])],
        ]  # fmt: skip
        slo: list[list[cw.IWidget]] = [
            [alarms_of("HealthProbeFailing", "StageErrors", "ApiLatencyP95", "Api5xx", "Api4xx", *[
                a for a in self.alarms if a.startswith(("LambdaErrors", "LambdaThrottles", "DeadLetters"))
            ])],
            self._sli_widgets(hour),
            [graph("Lambda errors", *[f.function.metric_errors(statistic="Sum", period=five)
                                      for f in functions], width=12),
             graph("Lambda p95 duration (ms)", *[f.function.metric_duration(statistic="p95", period=five)
                                                 for f in functions], width=12)],
        ]  # fmt: skip
        if rest_api is not None:
            availability = cw.MathExpression(
                expression="100 * (1 - errors / MAX([requests, 1]))",
                using_metrics={
                    "errors": rest_api.metric_server_error(statistic="Sum", period=hour),
                    "requests": rest_api.metric_count(statistic="Sum", period=hour),
                },
                label="API availability (%)",
                period=hour,
            )
            slo.append([
                cw.GraphWidget(
                    title=f"API latency p95 (target < {API_P95_LATENCY_MS:.0f} ms)",
                    left=[rest_api.metric_latency(statistic="p95", period=five)],
                    left_annotations=[cw.HorizontalAnnotation(value=API_P95_LATENCY_MS, label="SLO")],
                    width=12, height=6,
                ),
                cw.GraphWidget(
                    title="API availability (target 99.5%)", left=[availability],
                    left_annotations=[cw.HorizontalAnnotation(value=99.5, label="SLO")],
                    width=12, height=6,
                ),
            ])  # fmt: skip
        boards: dict[str, list[list[cw.IWidget]]] = {
            "Trading": trading,
            "Data": data,
            "ML": ml,
            "SLO": slo,
        }
        return {
            name: cw.Dashboard(
                self,
                f"{name}Dashboard",
                dashboard_name=f"{stack_name}-{name}",
                widgets=rows,
                default_interval=Duration.days(1),
            )
            for name, rows in boards.items()
        }


def schedule_interval_seconds(cron: Cron) -> int:
    """The longest gap between two runs of a daily-repeating EventBridge cron (whole hours):
    ``*`` hour → 1 h, ``*/N`` → N h, a list of hours → its widest gap, one hour → 24 h."""
    hour = cron.hour
    if hour == "*":
        return 3600
    step = re.fullmatch(r"(?:\*|0)/(\d+)", hour)
    if step:
        return int(step.group(1)) * 3600
    if re.fullmatch(r"\d+(?:,\d+)*", hour):
        hours = sorted({int(h) for h in hour.split(",")})
        gaps = [b - a for a, b in zip(hours, [*hours[1:], hours[0] + 24], strict=True)]
        return max(gaps) * 3600
    return 86_400  # ranges and other forms: at most a day apart


def heartbeat_window(interval_seconds: int) -> tuple[Duration, int]:
    """(period, evaluation periods) of a heartbeat alarm for a run every ``interval_seconds``.

    Up to every 12 h: periods of one interval, two of them empty (two missed runs) alarm. Daily:
    CloudWatch caps periods x evaluation periods at one day, so 24 one-hour periods must all be
    empty — the alarm fires within the hour after the run that did not happen.
    """
    if interval_seconds <= 0:
        raise ValueError(f"interval must be > 0 s, got {interval_seconds}")
    if 2 * interval_seconds <= 86_400:
        return Duration.seconds(interval_seconds), 2
    return Duration.hours(1), 24


def _visible(queue: sqs.IQueue, period: Duration) -> cw.IMetric:
    return queue.metric_approximate_number_of_messages_visible(statistic="Maximum", period=period)
