"""Alarms (severities and actions), encrypted alert topics, the alarm kill-switch function,
dashboards, and the metric catalogue they are built from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.slo import slo_queries
from infra.config import Cron
from infra.constructs.observability import heartbeat_window, schedule_interval_seconds
from tests.infrastructure.conftest import REPO_ROOT, Synthesized
from tests.infrastructure.test_iam import SWITCH, _common, _grants

PACKAGE = REPO_ROOT / "functions" / "cryptosmarttrader"
EMITTED = re.compile(
    r"""(?:metrics\.add\(\s*|add_metric\(\s*name=)["']([A-Za-z]+)["']""", re.MULTILINE
)


def _alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in synthesized.resources_of_type("AWS::CloudWatch::Alarm").values()
    }


def _severity(name: str) -> str:
    return name.split("-")[1]


def test_sixteen_alarms_with_a_severity_each(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized)

    assert len(alarms) >= 16
    for name, props in alarms.items():
        severity = _severity(name)
        assert severity in {"critical", "warning", "info"}, name
        assert props["AlarmDescription"].startswith(f"[{severity}] ")
    severities = {_severity(n) for n in alarms}
    assert severities == {"critical", "warning", "info"}


def test_critical_alarms_notify_the_critical_topic_and_invoke_the_kill_switch_lambda(
    synthesized: Synthesized,
) -> None:
    # Given the observability construct's topics and kill-switch function
    obs = synthesized.stack.observability
    critical = synthesized.logical_id(obs.topics["critical"])
    warning = synthesized.logical_id(obs.topics["warning"])
    function = synthesized.logical_id(obs.killswitch_lambda.function)

    for name, props in _alarms(synthesized).items():
        actions = props.get("AlarmActions", [])
        refs = {a["Ref"] for a in actions if isinstance(a, dict) and "Ref" in a}
        lambda_actions = [a for a in actions if isinstance(a, dict) and "Fn::GetAtt" in a]
        severity = _severity(name)
        # Then critical → critical topic + the function; warning → warning topic; info → none
        if severity == "critical":
            assert refs == {critical}, name
            assert [a["Fn::GetAtt"][0] for a in lambda_actions] == [function], name
        elif severity == "warning":
            assert refs == {warning} and not lambda_actions, name
        else:
            assert actions == [], name
    # and CloudWatch alarms (only) may invoke the function
    permissions = [
        r["Properties"]
        for r in synthesized.resources_of_type("AWS::Lambda::Permission").values()
        if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    assert permissions
    assert {p["Principal"] for p in permissions} == {"lambda.alarms.cloudwatch.amazonaws.com"}
    assert all("SourceArn" in p for p in permissions)


def test_named_alarms_watch_the_intended_signals(synthesized: Synthesized) -> None:
    alarms = {n.split("-", 2)[2]: p for n, p in _alarms(synthesized).items()}

    assert alarms["Drawdown"]["MetricName"] == "Drawdown" and alarms["Drawdown"]["Threshold"] == 10
    assert alarms["RiskGuardEmergency"]["Threshold"] == 3
    assert alarms["RiskGuardEmergency"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarms["ApiLatencyP95"]["ExtendedStatistic"] == "p95"
    assert alarms["ApiLatencyP95"]["Threshold"] == 1000
    # no signals / stale data alarm when the data stops coming (missing data breaches)
    assert alarms["NoSignals"]["TreatMissingData"] == "breaching"
    assert alarms["StaleData"]["TreatMissingData"] == "breaching"
    # no fill in the hour is no slippage: the alarm stays quiet instead of alarming on absence
    assert alarms["Slippage"]["TreatMissingData"] == "notBreaching"


def test_an_unreadable_book_record_notifies_the_operators_without_the_kill_switch(
    synthesized: Synthesized,
) -> None:
    # Given the synthesized alarms
    obs = synthesized.stack.observability
    warning = synthesized.logical_id(obs.topics["warning"])
    alarms = {n.split("-", 2)[2]: (n, p) for n, p in _alarms(synthesized).items()}
    # Then one unreadable order or position record in an hour of the execution cycle alarms
    name, props = alarms["BookRecordsUnreadable"]
    assert _severity(name) == "warning"
    assert props["MetricName"] == "BookRecordsUnreadable" and props["Statistic"] == "Sum"
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {"service": "cst-execution"}
    assert props["Period"] == 3600 and props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["TreatMissingData"] == "notBreaching"
    # and it notifies the operators' topic only: the cycle already refuses every entry, so it
    # never engages the kill-switch (which would cancel the exits and stops of the other coins)
    refs = [a["Ref"] for a in props["AlarmActions"]]
    assert refs == [warning]
    assert "cst book check" in props["AlarmDescription"]


def test_alert_topics_are_kms_encrypted_with_rotation(synthesized: Synthesized) -> None:
    obs = synthesized.stack.observability
    key = synthesized.logical_id(obs.key)

    for topic in obs.topics.values():
        props = synthesized.resources[synthesized.logical_id(topic)]["Properties"]
        assert props["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert synthesized.resources[key]["Properties"]["EnableKeyRotation"] is True


def test_kill_switch_function_grants_only_the_switch_and_audit_writes(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    construct = stack.observability.killswitch_lambda

    grants = _grants(synthesized, construct)

    assert grants == {
        **_common(synthesized, construct),
        SWITCH: {
            "ssm:DescribeParameters",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
            "ssm:PutParameter",
        },
        synthesized.logical_id(stack.tables.state): {"dynamodb:PutItem"},
    }
    function = synthesized.resources[synthesized.logical_id(construct.function)]["Properties"]
    assert function["Handler"] == "cryptosmarttrader.handlers.alarm_killswitch.handler"


def test_lambda_error_alarms_cover_every_function(synthesized: Synthesized) -> None:
    functions = set(synthesized.resources_of_type("AWS::Lambda::Function"))
    covered: set[str] = set()
    for name, props in _alarms(synthesized).items():
        if "LambdaErrors" not in name:
            continue
        for query in props["Metrics"]:
            stat = query.get("MetricStat")
            if stat and stat["Metric"]["MetricName"] == "Errors":
                (dim,) = stat["Metric"]["Dimensions"]
                covered.add(dim["Value"]["Ref"])
    assert covered == functions


def test_four_dashboards(synthesized: Synthesized) -> None:
    names = {
        r["Properties"]["DashboardName"]
        for r in synthesized.resources_of_type("AWS::CloudWatch::Dashboard").values()
    }
    assert names == {f"CryptoSmartTrader-{n}" for n in ("Trading", "Data", "ML", "SLO")}


def _emitted_names() -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        for name in EMITTED.findall(path.read_text()):
            found.setdefault(name, set()).add(path)
    return found


def test_every_metric_the_code_emits_is_in_the_catalogue() -> None:
    # Given the metric names written literally in the functions' code
    emitted = _emitted_names()
    catalogue = {spec.name for spec in mn.catalogue()}

    # Then each is catalogued (name + unit + dimensions live in one place)
    assert emitted, "the pattern found no metric at all"
    assert set(emitted) - catalogue == set()


def test_catalogue_is_complete_and_names_real_producers() -> None:
    specs = mn.catalogue()
    assert len(specs) >= 23
    assert len({s.name for s in specs}) == len(specs)
    assert {s.family for s in specs} == set(mn.Family)
    for spec in specs:
        for producer in spec.producers:
            source = (PACKAGE / producer).read_text()
            if spec is mn.COLD_START:  # emitted by Powertools itself
                assert "capture_cold_start_metric=True" in source
                continue
            const = next(k for k, v in vars(mn).items() if v is spec)
            assert f'"{spec.name}"' in source or f"mn.{const}" in source, (spec.name, producer)


def test_the_slis_are_the_metrics_the_slo_gate_reads() -> None:
    # Given the SLO gate's queries for one stage
    queries = slo_queries("canary", window_seconds=3600, period_seconds=60)

    # Then each names a catalogued SLI, in the namespace, with exactly the Stage dimension the
    # SLIs are published with (CloudWatch matches the whole dimension set)
    slis = {spec.name: spec for spec in mn.SLIS}
    assert {q.metric for q in queries} == set(slis)
    for query in queries:
        spec = slis[query.metric]
        assert spec.is_sli and spec.service is None and spec.family is mn.Family.SLO
        assert query.dimensions == (("Stage", "canary"),)
        assert spec.dimensions == tuple(name for name, _ in query.dimensions)
    # and every other metric carries the service dimension
    assert [s for s in mn.catalogue() if s.service is None] == list(mn.SLIS)


def test_slo_dashboard_charts_the_stage_slis_and_an_alarm_watches_the_probe(
    synthesized: Synthesized,
) -> None:
    # Given the SLO dashboard's body and the probe alarm
    (slo_board,) = [
        r["Properties"]["DashboardBody"]
        for r in synthesized.resources_of_type("AWS::CloudWatch::Dashboard").values()
        if r["Properties"]["DashboardName"] == "CryptoSmartTrader-SLO"
    ]
    body = json.dumps(slo_board)
    alarm = _alarms(synthesized)["CryptoSmartTrader-warning-HealthProbeFailing"]

    # Then the go-live SLIs are charted for the deployment's stage, dimensioned Stage only
    for spec in (mn.PROBE_SUCCESS, mn.PROBE_FAILURE, mn.DECISION_LATENCY, mn.REQUESTS, mn.ERRORS):
        assert f'\\"{spec.name}\\",\\"Stage\\",\\"staging\\"' in body, spec.name
    # and three intervals without a passing probe (failing, or no probe at all) alarm
    assert alarm["MetricName"] == "ProbeSuccess"
    assert alarm["Dimensions"] == [{"Name": "Stage", "Value": "staging"}]
    assert alarm["Period"] == 60 and alarm["EvaluationPeriods"] == 3
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"


def test_every_custom_metric_in_an_alarm_is_catalogued(synthesized: Synthesized) -> None:
    catalogue = {spec.name for spec in mn.catalogue()}
    for props in _alarms(synthesized).values():
        stats = [props] if "MetricName" in props else [
            q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q
        ]  # fmt: skip
        for metric in stats:
            if metric["Namespace"] == mn.NAMESPACE:
                assert metric["MetricName"] in catalogue


@pytest.mark.parametrize(
    ("alarm", "metric", "service", "period", "periods"),
    [
        # hourly cycle at :10 → a 1 h period; two empty hours (two missed cycles) alarm
        ("ExecutionStalled", "RiskLevel", "cst-execution", 3600, 2),
        # daily scan at 00:15 → 24 one-hour periods (CloudWatch's one-day cap), all empty
        ("NoSignals", "UniverseSize", "cst-scan", 3600, 24),
        # hourly ingest schedules (the most frequent one sets the pace)
        ("IngestHeartbeat", "IngestRuns", "cst-ingest", 3600, 2),
    ],
)
def test_every_scheduled_function_has_a_heartbeat_alarm_where_silence_breaches(
    synthesized: Synthesized, alarm: str, metric: str, service: str, period: int, periods: int
) -> None:
    # Given the alarm on the metric the function emits once per completed run
    props = _alarms(synthesized)[f"CryptoSmartTrader-warning-{alarm}"]

    # Then it counts completed runs over periods fitted to the schedule, and no data at all
    # (the function stopped running, or every run failed) is a breach, not a quiet night
    assert (props["MetricName"], props["Statistic"]) == (metric, "SampleCount")
    assert props["Dimensions"] == [{"Name": "service", "Value": service}]
    assert (props["Period"], props["EvaluationPeriods"]) == (period, periods)
    assert props["Period"] * props["EvaluationPeriods"] <= 86_400  # CloudWatch's limit
    assert props["ComparisonOperator"] == "LessThanThreshold" and props["Threshold"] == 1
    assert props["TreatMissingData"] == "breaching"
    assert props["AlarmActions"]  # it notifies


@pytest.mark.parametrize(
    ("minute", "hour", "every", "window"),
    [
        ("10", "*", 3600, (3600, 2)),
        ("5", "*/4", 14_400, (14_400, 2)),
        ("0", "0/6", 21_600, (21_600, 2)),
        ("0", "0,12", 43_200, (43_200, 2)),
        ("0", "1,2,20", 18 * 3600, (3600, 24)),
        ("15", "0", 86_400, (3600, 24)),
    ],
)
def test_heartbeat_periods_follow_the_schedule(
    minute: str, hour: str, every: int, window: tuple[int, int]
) -> None:
    interval = schedule_interval_seconds(Cron(minute=minute, hour=hour))
    period, periods = heartbeat_window(interval)
    assert interval == every
    assert (int(period.to_seconds()), periods) == window


def test_a_failed_scheduled_run_and_a_stalled_execution_each_raise_an_alarm(
    synthesized: Synthesized,
) -> None:
    alarms = {n.split("-", 2)[2]: (n, p) for n, p in _alarms(synthesized).items()}
    # Given the stage's Errors SLI, exactly as the handlers publish it (Stage only)
    name, errors = alarms["StageErrors"]
    assert _severity(name) == "warning"
    assert errors["MetricName"] == "Errors" and errors["Namespace"] == "CryptoSmartTrader"
    assert errors["Dimensions"] == [{"Name": "Stage", "Value": "staging"}]
    # Then one failed invocation is enough
    assert errors["Statistic"] == "Sum" and errors["Threshold"] == 1
    assert errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert errors["EvaluationPeriods"] == 1
    # And an execution cycle that never completes (no RiskLevel published) alarms too
    name, stalled = alarms["ExecutionStalled"]
    assert _severity(name) == "warning"
    assert stalled["MetricName"] == "RiskLevel"
    assert stalled["Dimensions"] == [{"Name": "service", "Value": "cst-execution"}]
    assert stalled["TreatMissingData"] == "breaching"


def test_the_trading_dashboard_says_where_orders_go(synthesized: Synthesized) -> None:
    (board,) = [
        r["Properties"]["DashboardBody"]
        for r in synthesized.resources_of_type("AWS::CloudWatch::Dashboard").values()
        if r["Properties"]["DashboardName"] == "CryptoSmartTrader-Trading"
    ]
    body = json.dumps(board)
    # the default deployment trades on the paper venue, and the board's first line says so
    assert "Orders go to: paper** (no real money)" in body
