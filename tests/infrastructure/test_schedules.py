"""EventBridge schedules: one ingest rule per (exchange, timeframe), one daily scan rule, the
hourly execution rule, the health probe's rate rule; the deployment config and stage they are
built from."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from pydantic import ValidationError

from infra.app import CONFIG_CONTEXT_KEY, STAGE_CONTEXT_KEY, deployment_config
from infra.config import (
    DEFAULT_INGEST_SCHEDULES,
    DEFAULT_UNIVERSES,
    Cron,
    DeploymentConfig,
    IngestSchedule,
)
from tests.infrastructure.conftest import Synthesized


def _rules_targeting(synthesized: Synthesized, function_id: str) -> list[dict[str, Any]]:
    rules = synthesized.resources_of_type("AWS::Events::Rule").values()
    return [
        rule
        for rule in rules
        if any(
            t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in rule["Properties"]["Targets"]
        )
    ]


def test_one_ingest_rule_per_exchange_and_timeframe(synthesized: Synthesized) -> None:
    # Given the ingest function
    ingest = synthesized.stack.ingestion.lambda_
    function_id = synthesized.logical_id(ingest.function)
    queue_id = synthesized.logical_id(ingest.dead_letter_queue)

    # When the candle rules that invoke it are collected, keyed by their event
    rules = [
        r for r in _rules_targeting(synthesized, function_id)
        if "dataset" not in json.loads(r["Properties"]["Targets"][0]["Input"])
    ]  # fmt: skip
    by_event = {}
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        event = json.loads(target["Input"])
        by_event[(event["exchange"], event["timeframe"])] = (rule, target, event)

    # Then there is exactly one rule per configured (exchange, timeframe), each passing the
    # exchange and timeframe, on its UTC cron, with retries and the DLQ; no rule names symbols
    # (the handler reads the liquid universe each exchange's universe rule stored; Kraken's is
    # quoted in USD)
    assert len(rules) == len(DEFAULT_INGEST_SCHEDULES)
    assert {("binance", "1h"), ("binance", "1d"), ("kraken", "1h"), ("kucoin", "1h")} <= set(
        by_event
    )
    universe_exchanges = {u.exchange for u in DEFAULT_UNIVERSES}
    assert universe_exchanges == {"binance", "kraken", "kucoin"}
    assert {u.exchange: u.quote for u in DEFAULT_UNIVERSES} == {
        "binance": "USDT",
        "kraken": "USD",
        "kucoin": "USDT",
    }
    for schedule in DEFAULT_INGEST_SCHEDULES:
        rule, target, event = by_event[(schedule.exchange, schedule.timeframe)]
        expected: dict[str, object] = {
            "exchange": schedule.exchange,
            "timeframe": schedule.timeframe,
        }
        if schedule.exchange in universe_exchanges:
            assert schedule.symbols is None, schedule
        else:
            assert schedule.symbols, schedule
            expected["symbols"] = list(schedule.symbols)
        assert event == expected
        assert rule["Properties"]["ScheduleExpression"] == schedule.cron.expression()
        assert rule["Properties"]["State"] == "ENABLED"
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
        }


def test_market_caps_are_ingested_daily_before_midnight_utc(synthesized: Synthesized) -> None:
    # Given the ingest function's rules
    function_id = synthesized.logical_id(synthesized.stack.ingestion.lambda_.function)
    events = [
        (r, json.loads(r["Properties"]["Targets"][0]["Input"]))
        for r in _rules_targeting(synthesized, function_id)
    ]
    # Then one rule asks for the market caps of the coins of binance's stored liquid universe
    # (no symbol list: the same pairs the daily candles ingest) at 23:55 UTC, the last minutes
    # before the daily close the values will be keyed to, after that universe was selected
    ((rule, event),) = [(r, e) for r, e in events if e.get("dataset") == "market_caps"]
    daily = next(s for s in DEFAULT_INGEST_SCHEDULES if s.timeframe == "1d")
    assert daily.symbols is None and daily.exchange == "binance"
    assert event == {"dataset": "market_caps", "exchange": "binance"}
    assert rule["Properties"]["ScheduleExpression"] == "cron(55 23 * * ? *)"
    universe = next(u for u in DEFAULT_UNIVERSES if u.exchange == "binance")
    assert (universe.cron.hour, int(universe.cron.minute)) == ("23", 50)


def test_daily_ingest_runs_before_the_daily_scan(synthesized: Synthesized) -> None:
    # Given the 1d ingest rule and the scan rule
    daily = next(s for s in DEFAULT_INGEST_SCHEDULES if s.timeframe == "1d")
    scan_cron = synthesized.stack.config.scan.cron

    # Then both run in hour 0 UTC and the scan starts after the daily candles were fetched
    assert daily.cron.hour == scan_cron.hour == "0"
    assert int(daily.cron.minute) < int(scan_cron.minute)


def test_scan_runs_daily_at_0015_utc_with_top_n(synthesized: Synthesized) -> None:
    # Given the scan function
    scan = synthesized.stack.scan.lambda_
    function_id = synthesized.logical_id(scan.function)

    # When its rules are collected
    (rule,) = _rules_targeting(synthesized, function_id)
    (target,) = rule["Properties"]["Targets"]

    # Then one rule fires at 00:15 UTC every day with {"top_n": 20}
    assert rule["Properties"]["ScheduleExpression"] == "cron(15 0 * * ? *)"
    assert json.loads(target["Input"]) == {"top_n": 20}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [synthesized.logical_id(scan.dead_letter_queue), "Arn"]}
    }


def test_execution_runs_hourly_after_every_hourly_ingest(synthesized: Synthesized) -> None:
    # Given the execution function and the hourly ingest rules
    execution = synthesized.stack.execution.lambda_
    (rule,) = _rules_targeting(synthesized, synthesized.logical_id(execution.function))
    (target,) = rule["Properties"]["Targets"]
    hourly = [s for s in DEFAULT_INGEST_SCHEDULES if s.timeframe == "1h"]

    # Then it runs every hour, after each exchange's hourly candles were fetched, with {}
    assert rule["Properties"]["ScheduleExpression"] == "cron(10 * * * ? *)"
    assert all(int(s.cron.minute) < 10 for s in hourly)
    assert json.loads(target["Input"]) == {}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [synthesized.logical_id(execution.dead_letter_queue), "Arn"]}
    }


def test_health_probe_runs_every_minute_and_dead_letters_what_it_cannot_deliver(
    synthesized: Synthesized,
) -> None:
    # Given the probe function
    probe = synthesized.stack.probe.lambda_
    function_id = synthesized.logical_id(probe.function)

    # When its rules are collected
    (rule,) = _rules_targeting(synthesized, function_id)
    (target,) = rule["Properties"]["Targets"]

    # Then one rule runs it every minute (one uptime sample each); an event it could not
    # deliver within one interval is superseded by the next and lands in its DLQ
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [synthesized.logical_id(probe.dead_letter_queue), "Arn"]}
    }


def test_stage_comes_from_context_alone_or_in_the_config_and_is_validated() -> None:
    # Given a stage set alone, and one set inside the config object
    alone = deployment_config(App(context={STAGE_CONTEXT_KEY: "canary"}))
    inside = deployment_config(App(context={CONFIG_CONTEXT_KEY: {"stage": "production"}}))
    both = deployment_config(
        App(context={CONFIG_CONTEXT_KEY: {"stage": "production"}, STAGE_CONTEXT_KEY: "canary"})
    )

    # Then each is used (the dedicated key wins), and the default is staging
    assert (alone.stage, inside.stage, both.stage) == ("canary", "production", "canary")
    assert deployment_config(App()).stage == "staging"
    # and a stage the SLO gates never read fails the synth
    with pytest.raises(ValidationError, match="stage"):
        deployment_config(App(context={STAGE_CONTEXT_KEY: "prod"}))


def test_every_schedule_may_invoke_only_its_own_function(synthesized: Synthesized) -> None:
    # Given every schedule (ingest per exchange/timeframe, market caps, universe per exchange,
    # funding, sentiment, scan, execution, health probe, model drift), the two kill-switch audit
    # rules and every Lambda permission
    stack = synthesized.stack
    ingest = stack.ingestion.lambda_.function
    assert stack.ingestion.funding_rule is not None and stack.ingestion.sentiment_rule is not None
    rules = {
        synthesized.logical_id(rule): (rule, function)
        for rule, function in [
            *((r, ingest) for r in stack.ingestion.rules.values()),
            (stack.ingestion.market_cap_rule, ingest),
            *((r, ingest) for r in stack.ingestion.universe_rules.values()),
            (stack.ingestion.funding_rule, ingest),
            (stack.ingestion.sentiment_rule, ingest),
            (stack.scan.rule, stack.scan.lambda_.function),
            (stack.execution.rule, stack.execution.lambda_.function),
            (stack.probe.rule, stack.probe.lambda_.function),
            (stack.ml.drift_rule, stack.ml.drift.function),
            # not schedules: the kill-switch's change events, to its audit function
            *(
                (r, stack.kill_switch.audit_lambda.function)  # type: ignore[union-attr]
                for r in stack.kill_switch.audit_rules.values()
            ),
        ]
    }
    permissions = synthesized.resources_of_type("AWS::Lambda::Permission").values()

    # Then each rule has a permission scoped to its ARN for exactly its target function
    # (ingest candles, one universe rule per exchange, market caps, funding, sentiment, scan,
    # execution, probe, drift, and the two audit rules)
    assert len(rules) == len(DEFAULT_INGEST_SCHEDULES) + len(DEFAULT_UNIVERSES) + 7 + 2
    assert len(synthesized.resources_of_type("AWS::Events::Rule")) == len(rules)
    for rule_id, (_, function) in rules.items():
        function_id = synthesized.logical_id(function)
        assert any(
            p["Properties"]["Principal"] == "events.amazonaws.com"
            and p["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}
            and p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
            for p in permissions
        ), rule_id


def test_config_rejects_a_second_rule_for_the_same_exchange_and_timeframe() -> None:
    # Given two schedules for binance 1h
    twice = [DEFAULT_INGEST_SCHEDULES[0], DEFAULT_INGEST_SCHEDULES[0]]

    # When the deployment config is built / Then it is refused before any construct exists
    with pytest.raises(ValidationError, match="only one ingest schedule"):
        DeploymentConfig(ingest_schedules=tuple(twice))


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"default_exchange": "kucoin"}, "no 1d ingest schedule for kucoin"),
        (
            {"ingest_schedules": [s for s in DEFAULT_INGEST_SCHEDULES if s.timeframe == "1h"]},
            "no 1d ingest schedule for binance",
        ),
        ({"market_caps": {"exchange": "kucoin"}}, "market_caps ingests the coins of kucoin"),
        ({"funding": {"exchange": "kucoin"}}, "funding ingests kucoin's perpetuals"),
    ],
)
def test_config_rejects_a_scan_exchange_whose_data_is_not_ingested(
    config: dict[str, Any], why: str
) -> None:
    # Given a deployment whose scan would read an exchange's lake data that no rule ingests
    # When the config is built / Then it is refused, naming what is missing
    with pytest.raises(ValidationError, match=why):
        DeploymentConfig.model_validate(config)
    # while a replay deployment (the recorded data, no lake) needs none of it
    DeploymentConfig.model_validate({**config, "data_source": "recorded"})


@pytest.mark.parametrize("symbol", ["btc/usdt", "BTCUSDT", "BTC/USDT/X", "BTC-/USDT"])
def test_config_rejects_symbols_that_are_not_ccxt_pairs(symbol: str) -> None:
    with pytest.raises(ValidationError, match="ccxt unified pair"):
        IngestSchedule(exchange="binance", timeframe="1h", symbols=(symbol,), cron=Cron(minute="2"))


def test_config_from_context_replaces_the_defaults() -> None:
    # Given a context value with a kraken schedule beside the scan exchange's own candles, and a
    # different scan size
    scan_candles = [s.model_dump() for s in DEFAULT_INGEST_SCHEDULES if s.exchange == "binance"]
    override = {
        "ingest_schedules": [
            *scan_candles,
            {
                "exchange": "kraken",
                "timeframe": "4h",
                "symbols": ["BTC/USD"],
                "cron": {"minute": "7", "hour": "*/4"},
            },
        ],
        "scan": {"top_n": 5},
    }
    app = App(context={CONFIG_CONTEXT_KEY: json.dumps(override)})

    # When the config is read
    config = deployment_config(app)

    # Then exactly those schedules and that size are used
    assert [(s.exchange, s.timeframe) for s in config.ingest_schedules] == [
        ("binance", "1h"), ("binance", "1d"), ("kraken", "4h")
    ]  # fmt: skip
    (schedule,) = [s for s in config.ingest_schedules if s.exchange == "kraken"]
    assert schedule.event() == {"exchange": "kraken", "timeframe": "4h", "symbols": ["BTC/USD"]}
    assert schedule.cron.expression() == "cron(7 */4 * * ? *)"
    assert config.scan.event() == {"top_n": 5}


def test_config_from_context_with_a_typo_fails_the_synth() -> None:
    # Given a misspelt field
    app = App(context={CONFIG_CONTEXT_KEY: {"scan": {"topn": 5}}})

    # When the config is read / Then validation names the problem
    with pytest.raises(ValidationError, match="topn"):
        deployment_config(app)


def test_technical_only_trading_is_an_explicit_opt_in_of_the_deployment() -> None:
    # Given the default config and one that opts in through the context
    default = deployment_config(App())
    opted = deployment_config(
        App(context={CONFIG_CONTEXT_KEY: {"allow_technical_only_trading": True}})
    )

    # Then a deployment without a promoted model trades nothing unless it says so
    assert default.allow_technical_only_trading is False
    assert opted.allow_technical_only_trading is True
    # and the old, inverted flag is refused by name rather than silently ignored
    with pytest.raises(ValidationError, match="require_promoted_model"):
        deployment_config(App(context={CONFIG_CONTEXT_KEY: {"require_promoted_model": False}}))
