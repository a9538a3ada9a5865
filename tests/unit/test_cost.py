"""The idle-bill model on hand-written templates with known answers."""

import json

import pytest

from cryptosmarttrader.services import cost


def _function(memory: int = 256, arch: str = "x86_64", service: str = "cst-health-probe") -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": "cryptosmarttrader.handlers.health_probe.handler",
            "MemorySize": memory,
            "Architectures": [arch],
            "TracingConfig": {"Mode": "Active"},
            "Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": service}},
        },
    }


def _rule(expression: str, target: str = "Fn", payload: dict | None = None) -> dict:
    target_spec: dict = {"Arn": {"Fn::GetAtt": [target, "Arn"]}, "Id": "T"}
    if payload is not None:
        target_spec["Input"] = json.dumps(payload)
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "ScheduleExpression": expression,
            "State": "ENABLED",
            "Targets": [target_spec],
        },
    }


@pytest.mark.parametrize(
    ("expression", "per_day"),
    [
        ("rate(1 minute)", 1440),
        ("rate(5 minutes)", 288),
        ("rate(2 hours)", 12),
        ("cron(2 * * * ? *)", 24),
        ("cron(15 0 * * ? *)", 1),
        ("cron(0,30 */6 * * ? *)", 8),
        ("cron(0 8-11 * * ? *)", 4),
    ],
)
def test_schedules_are_counted_per_month(expression: str, per_day: int) -> None:
    assert cost.runs_per_month(expression) == pytest.approx(per_day * 365.25 / 12)


@pytest.mark.parametrize("expression", ["cron(0 8 1 * ? *)", "at(2026-01-01T00:00:00)", "rate(x)"])
def test_schedules_it_cannot_model_are_refused_by_name(expression: str) -> None:
    with pytest.raises(cost.TemplateError, match=r"schedule|cron"):
        cost.runs_per_month(expression)


def test_a_probe_every_minute_costs_its_gb_seconds_requests_and_traces() -> None:
    # Given one 256 MB x86 function run every minute (0.5 s a run in its profile)
    template = {"Resources": {"Fn": _function(), "Probe": _rule("rate(1 minute)")}}
    result = cost.estimate(template)
    (probe,) = [i for i in result.items if i.item.startswith("health_probe")]
    runs = cost.MINUTES_PER_MONTH
    # Then the line is runs × 0.5 s × 0.25 GB at the x86 price plus the requests
    expected = runs * 0.5 * 0.25 * 0.0000166667 + runs * 0.20 / 1e6
    assert probe.quantity == pytest.approx(runs)
    assert probe.usd == pytest.approx(expected)
    (xray,) = [i for i in result.items if i.service == "X-Ray"]
    assert xray.usd == pytest.approx(runs * 5.0 / 1e6)
    # and arm64 is billed at its own price
    arm = cost.estimate(
        {"Resources": {"Fn": _function(arch="arm64"), "Probe": _rule("rate(1 minute)")}}
    )
    (arm_probe,) = [i for i in arm.items if i.item.startswith("health_probe")]
    assert arm_probe.usd == pytest.approx(runs * 0.5 * 0.25 * 0.0000133334 + runs * 0.20 / 1e6)


def test_metric_math_alarms_pay_per_metric_read_and_dashboards_per_board() -> None:
    stat = {"Metric": {"MetricName": "Errors", "Namespace": "AWS/Lambda"}, "Period": 300}
    template = {
        "Resources": {
            "Single": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 60}},
            "HighRes": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 10}},
            "Math": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Metrics": [
                        {"Id": "e", "Expression": "m0+m1+m2"},
                        *({"Id": f"m{i}", "MetricStat": stat} for i in range(3)),
                    ]
                },
            },
            "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
        }
    }
    assert cost.alarm_metrics(template) == (4, 1)
    result = cost.estimate(template)
    by_item = {i.item: i.usd for i in result.items}
    assert by_item["3 alarms"] == pytest.approx(4 * 0.10 + 0.30)
    assert by_item["dashboards"] == pytest.approx(3.00)


def test_ingest_metrics_multiply_by_the_scheduled_exchanges_and_timeframes() -> None:
    # Given an ingest function with two candle rules and a market-cap rule
    ingest = _function(1024, service="cst-ingest")
    template = {
        "Resources": {
            "Fn": ingest,
            "A": _rule("cron(2 * * * ? *)", payload={"exchange": "binance", "timeframe": "1h"}),
            "B": _rule("cron(3 * * * ? *)", payload={"exchange": "kraken", "timeframe": "1h"}),
            "C": _rule(
                "cron(55 23 * * ? *)", payload={"dataset": "market_caps", "exchange": "binance"}
            ),
        }
    }
    metrics = cost.idle_custom_metrics(template)
    # Then each (exchange, timeframe) metric counts two series, market-cap metrics one
    assert metrics["CandlesIngested"] == 2
    assert metrics["DataStaleness"] == 2
    assert metrics["MarketCapsIngested"] == 1
    # and event-only metrics (rejections, errors) are not billed at idle
    assert "CandlesRejected" not in metrics
    assert "ExchangeErrors" not in metrics


def test_the_web_dashboard_is_priced_cloudfront_and_its_bucket() -> None:
    # Given a template with the dashboard's distribution and its site and log buckets
    template = {
        "Resources": {
            "WebDistribution": {"Type": "AWS::CloudFront::Distribution", "Properties": {}},
            "WebSiteBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "WebLogsBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        }
    }
    result = cost.estimate(template)
    # Then CloudFront has its own line: no request at idle, so nothing billed, and the price
    # per request and per GB is named for when the dashboard is used
    (cdn,) = [i for i in result.items if i.service == "CloudFront"]
    assert cdn.item == "1 distribution (web dashboard)"
    assert cdn.usd == 0.0
    assert "per 10,000 HTTPS requests" in cdn.basis and "per GB" in cdn.basis
    # and the S3 line counts the dashboard's files (two builds kept) beside the lake
    (s3,) = [i for i in result.items if i.service == "S3"]
    assert "dashboard" in s3.item
    assert s3.usd == pytest.approx((cost.LAKE_GB + cost.SITE_GB) * 0.023)
    # and without a distribution there is no CloudFront line at all
    assert not [i for i in cost.estimate({"Resources": {}}).items if i.service == "CloudFront"]
