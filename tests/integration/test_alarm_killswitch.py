"""Kill-switch Lambda on moto SSM, invoked with the event shapes CloudWatch really delivers.

Shapes: the Lambda alarm-action payload (CloudWatch user guide, "Lambda alarm actions") and an
SNS notification of an alarm (SNS → Lambda event with CloudWatch's alarm JSON as ``Message``).
moto does not fire alarm actions, so the tests deliver the events to the handler directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack

ALARM_NAME = "CryptoSmartTrader-critical-Drawdown"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM_NAME}"
REASON = (
    "Threshold Crossed: 1 out of the last 1 datapoints [12.4 (04/08/24 12:35:00)] was greater "
    "than the threshold (10.0) (minimum 1 datapoint for OK -> ALARM transition)."
)


@dataclass
class Context:
    aws_request_id: str = "7a5e1b52-4b9a-4f1e-9f6c-1f1d0e4a2b3c"
    function_name: str = "cst-alarm-killswitch"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:cst-alarm-killswitch"
    )


def lambda_action_event(state: str = "ALARM", reason: str = REASON) -> dict[str, Any]:
    """The payload CloudWatch sends to a Lambda alarm action (single-metric alarm)."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": ALARM_ARN,
        "accountId": "123456789012",
        "time": "2024-08-04T12:36:15.490+0000",
        "region": "us-east-1",
        "alarmData": {
            "alarmName": ALARM_NAME,
            "state": {
                "value": state,
                "reason": reason,
                "reasonData": json.dumps(
                    {
                        "version": "1.0",
                        "queryDate": "2024-08-04T12:36:15.484+0000",
                        "statistic": "Maximum",
                        "period": 300,
                        "threshold": 10.0,
                        "recentDatapoints": [12.4],
                    }
                ),
                "timestamp": "2024-08-04T12:36:15.490+0000",
            },
            "previousState": {
                "value": "OK",
                "reason": "Threshold Crossed: 1 datapoint [3.1] was not greater than 10.0.",
                "timestamp": "2024-08-04T11:31:29.595+0000",
            },
            "configuration": {
                "description": "critical: drawdown above 10% of peak equity",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": "CryptoSmartTrader",
                                "name": "Drawdown",
                                "dimensions": {"service": "cst-execution"},
                            },
                            "period": 300,
                            "stat": "Maximum",
                            "unit": "Percent",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


def sns_event(state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
    """An SNS → Lambda event carrying CloudWatch's alarm notification JSON."""
    message = {
        "AlarmName": ALARM_NAME,
        "AlarmDescription": "critical: drawdown above 10% of peak equity",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2024-08-01T09:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": REASON,
        "StateChangeTime": "2024-08-04T12:36:15.490+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": ALARM_ARN,
        "OldStateValue": old,
        "OKActions": [],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:cst-critical"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "Drawdown", "Namespace": "CryptoSmartTrader", "StatisticType": "Statistic",
            "Statistic": "MAXIMUM", "Unit": None, "Dimensions": [{"value": "cst-execution", "name": "service"}],
            "Period": 300, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 10.0, "TreatMissingData": "notBreaching",
        },
    }  # fmt: skip
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:cst-critical:2bcfbf39",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:cst-critical",
                    "Subject": f'ALARM: "{ALARM_NAME}" in US East (N. Virginia)',
                    "Message": json.dumps(message),
                    "Timestamp": "2024-08-04T12:36:15.530Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    env = {
        "POWERTOOLS_SERVICE_NAME": "cst-alarm-killswitch",
        "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader", "POWERTOOLS_TRACE_DISABLED": "true",
    }  # fmt: skip
    with moto_stack(monkeypatch, env=env) as clients:
        _common.reset_caches()
        yield clients
        _common.reset_caches()


@pytest.fixture
def handler(aws: AwsClients) -> Iterator[ModuleType]:
    from cryptosmarttrader.handlers import alarm_killswitch as module

    module.reset_caches()
    yield module
    module.reset_caches()


def switch(aws: AwsClients) -> dict[str, Any]:
    raw = aws.ssm.get_parameter(Name=AwsResources().kill_switch_param)["Parameter"]["Value"]
    value: dict[str, Any] = json.loads(raw)
    return value


def audit(aws: AwsClients) -> list[Any]:
    return DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()


@pytest.mark.parametrize("make_event", [lambda_action_event, sns_event], ids=["lambda", "sns"])
def test_critical_alarm_turns_the_kill_switch_on_and_is_audited(
    handler: ModuleType, aws: AwsClients, make_event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given trading is on and a critical alarm fires
    assert switch(aws)["on"] is False

    # When CloudWatch delivers the alarm to the function
    result = handler.handler(make_event(), Context())

    # Then the kill-switch is on, with the alarm name and reason, set by the "alarm" actor
    assert result == {"status": "ok", "results": [{"alarm": ALARM_NAME, "action": "killswitch.on"}]}
    value = switch(aws)
    assert value["on"] is True and value["actor"] == "alarm"
    assert value["reason"] == f"{ALARM_NAME}: {REASON}"
    # and the audit trail says who, what and which invocation
    (entry,) = audit(aws)
    assert (entry.actor, entry.action) == ("alarm", "killswitch.on")
    assert entry.request_id == Context.aws_request_id
    assert entry.details["alarm_arn"] == ALARM_ARN and entry.details["previous_state"] == "OK"
    # and the engagement is counted
    assert '"KillSwitchEngaged"' in capsys.readouterr().out


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_recovery_states_never_turn_the_switch_off(
    handler: ModuleType, aws: AwsClients, state: str
) -> None:
    # Given the switch was engaged by an alarm
    handler.handler(lambda_action_event(), Context())

    # When the alarm returns to OK (or loses data), by either delivery path
    a = handler.handler(lambda_action_event(state=state), Context())
    b = handler.handler(sns_event(state=state, old="ALARM"), Context())

    # Then nothing changes: leaving the stop is a human decision
    assert a["results"][0]["action"] == b["results"][0]["action"] == "ignored"
    assert switch(aws)["on"] is True
    assert [e.action for e in audit(aws)] == ["killswitch.on"]


def test_an_alarm_on_an_already_stopped_system_keeps_the_first_reason(
    handler: ModuleType, aws: AwsClients
) -> None:
    # Given an operator stopped trading with their own reason
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock

    SsmKillSwitch(AwsResources().kill_switch_param, aws.ssm, SystemClock()).set(
        True, "operator: exchange maintenance", "jane"
    )

    # When a critical alarm fires
    result = handler.handler(sns_event(), Context())

    # Then the operator's reason stays and the alarm is recorded in the audit trail
    assert result["results"][0]["action"] == "killswitch.already_on"
    assert switch(aws)["reason"] == "operator: exchange maintenance"
    (entry,) = audit(aws)
    assert entry.details["kept_reason"] == "operator: exchange maintenance"


def test_a_leaking_alarm_reason_is_sanitized_before_it_is_stored(
    handler: ModuleType, aws: AwsClients
) -> None:
    leak = "ExchangeErrors: binance GET /api/v3/order?signature=deadbeefcafe0123 by ops@example.com"
    handler.handler(lambda_action_event(reason=leak), Context())

    stored = json.dumps(switch(aws)) + json.dumps([e.details for e in audit(aws)])
    assert "deadbeefcafe0123" not in stored and "ops@example.com" not in stored
    assert "signature=[REDACTED]" in switch(aws)["reason"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"source": "aws.ec2", "alarmArn": ALARM_ARN, "alarmData": {}},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "not json"}}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps({"foo": 1})}}]},
        {"Records": [{"EventSource": "aws:sqs", "body": "{}"}]},
    ],
)
def test_events_that_are_not_alarm_notifications_are_rejected_without_effect(
    handler: ModuleType, aws: AwsClients, event: dict[str, Any]
) -> None:
    result = handler.handler(event, Context())

    assert result["status"] == "rejected"
    assert switch(aws)["on"] is False
    assert audit(aws) == []


def _handler_ssm_faults() -> Any:
    """Fault hooks on the SSM client the handler itself uses (its cached wiring)."""
    from cryptosmarttrader.handlers import alarm_killswitch
    from cst_devtools.faults import ExhaustedRetries

    return ExhaustedRetries(alarm_killswitch._ssm())


@pytest.mark.parametrize("make_event", [lambda_action_event, sns_event], ids=["lambda", "sns"])
def test_a_throttled_read_never_stops_the_alarm_from_turning_the_switch_on(
    handler: ModuleType, aws: AwsClients, make_event: Any
) -> None:
    # Given trading is on and SSM throttles the function's GetParameter through every retry
    # (the fail-closed read then says "on" although the stored switch is off)
    faults = _handler_ssm_faults()
    faults.exhaust("GetParameter", 1)

    # When a critical alarm is delivered
    result = handler.handler(make_event(), Context())

    # Then the function still wrote the switch on: an unknown read is not "already on"
    assert faults.injected == {"GetParameter": 1}
    assert result["results"][0]["action"] == "killswitch.on"
    value = switch(aws)
    assert value["on"] is True and value["actor"] == "alarm"
    assert value["reason"] == f"{ALARM_NAME}: {REASON}"
    (entry,) = audit(aws)
    assert entry.action == "killswitch.on"
    assert entry.details["kill_switch_read"].startswith("failed: ")
    assert entry.details["kill_switch_was_on"] is None


def test_a_failed_switch_write_raises_so_the_async_retry_applies(
    handler: ModuleType, aws: AwsClients
) -> None:
    from botocore.exceptions import ClientError

    # Given SSM throttles the function's PutParameter through every retry
    faults = _handler_ssm_faults()
    faults.exhaust("PutParameter", 1)

    # When the alarm is delivered, the invocation fails (Lambda retries an async invocation
    # twice, then sends the event to the function's dead-letter queue)
    with pytest.raises(ClientError, match="ThrottlingException"):
        handler.handler(lambda_action_event(), Context())
    assert switch(aws)["on"] is False and audit(aws) == []

    # When Lambda retries the same event once SSM recovers
    result = handler.handler(lambda_action_event(), Context())

    # Then the switch is on, audited once
    assert result["results"][0]["action"] == "killswitch.on"
    assert switch(aws)["on"] is True
    assert [e.action for e in audit(aws)] == ["killswitch.on"]


def test_an_alarm_on_a_switch_known_on_rewrites_it_unchanged(
    handler: ModuleType, aws: AwsClients
) -> None:
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock

    # Given an operator stopped trading
    stored = SsmKillSwitch(AwsResources().kill_switch_param, aws.ssm, SystemClock()).set(
        True, "operator: exchange maintenance", "jane"
    )
    version = aws.ssm.get_parameter(Name=AwsResources().kill_switch_param)["Parameter"]["Version"]

    # When a critical alarm fires
    handler.handler(lambda_action_event(), Context())

    # Then the switch was written again (always written, idempotent) with the same value
    after = aws.ssm.get_parameter(Name=AwsResources().kill_switch_param)["Parameter"]
    assert after["Version"] == version + 1
    assert json.loads(after["Value"]) == {
        "on": True,
        "reason": "operator: exchange maintenance",
        "actor": "jane",
        "at": stored.at.isoformat().replace("+00:00", "Z"),
    }


def test_an_alarm_on_a_go_live_rollback_switch_keeps_its_marker(
    handler: ModuleType, aws: AwsClients
) -> None:
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from tests.support.killswitch import rollback_engaged_of

    # Given a go-live rollback engaged the switch (its marker: the run id)
    name = AwsResources().kill_switch_param
    switch = SsmKillSwitch(name, aws.ssm, SystemClock(), cache_seconds=0)
    switch.set(True, "go-live run-7 rollback: CanarySloBreach", "system:golive",
               golive_rollback="run-7")  # fmt: skip

    # When a critical alarm fires and re-affirms it
    result = handler.handler(lambda_action_event(), Context())

    # Then the value keeps the marker: the sweeps still keep held positions' stops
    assert result["results"][0]["action"] == "killswitch.already_on"
    stored = json.loads(aws.ssm.get_parameter(Name=name)["Parameter"]["Value"])
    assert stored["golive_rollback"] == "run-7"
    assert rollback_engaged_of(switch.status())


def test_an_alarm_reason_with_control_characters_is_stored_printable(
    handler: ModuleType, aws: AwsClients
) -> None:
    # Given an alarm reason carrying an ANSI escape, a carriage return and a bidi override
    # (the alarm must still engage: its text is cleaned, never refused)
    hostile = "Threshold \x1b[2K\rkill-switch: off \u202eNO\u202c" + "x" * 5000

    # When it is delivered
    handler.handler(lambda_action_event(reason=hostile), Context())

    # Then the switch is on and the stored reason is printable ASCII within the limits
    value = switch(aws)
    assert value["on"] is True
    assert value["reason"].isascii() and value["reason"].isprintable()
    assert len(value["reason"]) <= 500
    assert "\x1b" not in value["reason"] and "\u202e" not in value["reason"]
