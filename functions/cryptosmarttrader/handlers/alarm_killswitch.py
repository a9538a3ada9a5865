"""Kill-switch Lambda: a critical CloudWatch alarm in ALARM turns trading off.

Accepts the two shapes CloudWatch delivers:

* the **Lambda alarm action** event (``{"source": "aws.cloudwatch", "alarmArn", "alarmData":
  {"alarmName", "state": {"value", "reason", "timestamp"}, "previousState", ...}}``);
* an **SNS notification** of the alarm (``{"Records": [{"EventSource": "aws:sns", "Sns":
  {"Message": "<alarm JSON: AlarmName, NewStateValue, NewStateReason, ...>"}}]}``), for a
  topic subscription.

Only the ALARM state acts, and it always WRITES the switch on (idempotent): when the switch is
known to be on already, the same value is written back (its first reason, actor and time kept,
audited as ``killswitch.already_on``); otherwise — off, or unreadable — it is set on with
``reason="<alarm>: <reason>"`` and ``actor="alarm"`` (``killswitch.on``). A failed read is never
taken for "on": the fail-closed status only says trading must stop, not that the switch is
stored on, so a throttled ``GetParameter`` cannot make the alarm skip its write. Then an audit
entry. OK and INSUFFICIENT_DATA never turn the switch off (leaving the stop is a human
decision). A failed write raises: CloudWatch invokes the function asynchronously, so Lambda
retries it (twice) and finally sends the event to the function's dead-letter queue.

The function starts as fast as the stack allows (it stops trading): no Powertools Tracer, whose
X-Ray SDK import costs ~0.25 s of its cold start; Lambda's active tracing still records every
invocation in X-Ray (``bench/bench_cold_import.py`` measures the start).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.ssm_killswitch import (
    FAIL_CLOSED_ACTOR,
    KillSwitchStatus,
    SsmKillSwitch,
)
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.killswitch import writable_reason
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.handlers._common import (
    aws_clients,
    make_logger,
    make_metrics,
    rejected,
    resources,
)

logger = make_logger("alarm-killswitch")
metrics = make_metrics("alarm-killswitch")

ACTOR: Final = "alarm"

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _State(_Loose):
    value: AlarmState
    reason: str = ""
    timestamp: str = ""


class _AlarmData(_Loose):
    alarm_name: str = Field(alias="alarmName", min_length=1)
    state: _State
    previous_state: _State | None = Field(default=None, alias="previousState")


class LambdaAlarmEvent(_Loose):
    """CloudWatch's Lambda alarm action payload."""

    source: Literal["aws.cloudwatch"]
    alarm_arn: str = Field(alias="alarmArn", min_length=1)
    alarm_data: _AlarmData = Field(alias="alarmData")


class SnsAlarmMessage(_Loose):
    """The JSON message CloudWatch publishes to an SNS topic."""

    alarm_name: str = Field(alias="AlarmName", min_length=1)
    alarm_arn: str = Field(default="", alias="AlarmArn")
    new_state: AlarmState = Field(alias="NewStateValue")
    new_state_reason: str = Field(default="", alias="NewStateReason")
    old_state: AlarmState | None = Field(default=None, alias="OldStateValue")
    state_change_time: str = Field(default="", alias="StateChangeTime")


class _Sns(_Loose):
    message: str = Field(alias="Message")


class _SnsRecord(_Loose):
    event_source: Literal["aws:sns"] = Field(alias="EventSource")
    sns: _Sns = Field(alias="Sns")


class SnsEvent(_Loose):
    records: list[_SnsRecord] = Field(alias="Records", min_length=1)


class AlarmNotification(_Loose):
    """What both shapes say, normalized."""

    alarm_name: str
    alarm_arn: str
    state: AlarmState
    reason: str
    previous_state: AlarmState | None
    at: str


def parse(event: dict[str, Any]) -> list[AlarmNotification]:
    """Both delivery shapes → notifications. Raises ``ValidationError`` for anything else."""
    if "Records" in event:
        out = []
        for record in SnsEvent.model_validate(event).records:
            msg = SnsAlarmMessage.model_validate_json(record.sns.message)
            out.append(
                AlarmNotification(
                    alarm_name=msg.alarm_name,
                    alarm_arn=msg.alarm_arn,
                    state=msg.new_state,
                    reason=msg.new_state_reason,
                    previous_state=msg.old_state,
                    at=msg.state_change_time,
                )
            )
        return out
    direct = LambdaAlarmEvent.model_validate(event)
    data = direct.alarm_data
    return [
        AlarmNotification(
            alarm_name=data.alarm_name,
            alarm_arn=direct.alarm_arn,
            state=data.state.value,
            reason=data.state.reason,
            previous_state=None if data.previous_state is None else data.previous_state.value,
            at=data.state.timestamp,
        )
    ]


@cache
def _kill_switch() -> SsmKillSwitch:
    return SsmKillSwitch(
        resources().kill_switch_param, aws_clients().ssm, SystemClock(), cache_seconds=0
    )


@cache
def _audit() -> DynamoAuditTrail:
    return DynamoAuditTrail(resources().state_table, aws_clients().dynamodb)


def _reaffirm_or_engage(
    switch: SsmKillSwitch, before: KillSwitchStatus, alarm_reason: str
) -> tuple[KillSwitchStatus, str]:
    """Write the switch ON, always: re-affirm a value known to be ON (its first reason, actor
    and time kept), otherwise engage it with the alarm's reason. A failed write raises."""
    if before.known and before.actor != FAIL_CLOSED_ACTOR and before.on:
        try:
            kept = switch.set(True, before.reason, before.actor, at=before.at)
            return kept, "killswitch.already_on"
        except DomainError:  # stored text this version refuses: the alarm's reason replaces it
            logger.warning("stored kill-switch reason refused on rewrite; alarm reason used")
    return switch.set(True, alarm_reason, ACTOR), "killswitch.on"


def _act(alarm: AlarmNotification, request_id: str) -> dict[str, Any]:
    if alarm.state != "ALARM":
        logger.info("alarm state ignored", extra={"alarm": alarm.alarm_name, "state": alarm.state})
        return {"alarm": alarm.alarm_name, "action": "ignored", "state": alarm.state}
    switch = _kill_switch()
    # CloudWatch's text, made printable and small enough, so the value always fits SSM's 4 KB
    quoted = sanitize_text(f"{alarm.alarm_name}: {alarm.reason or 'in ALARM'}")
    reason = writable_reason(quoted, f"{alarm.alarm_name}: in ALARM")
    before = switch.status()
    read_ok = before.known and before.actor != FAIL_CLOSED_ACTOR
    after, action = _reaffirm_or_engage(switch, before, reason)
    if action == "killswitch.on":
        metrics.add_metric(name=mn.KILL_SWITCH_ENGAGED.name, unit=MetricUnit.Count, value=1)
    _audit().record(
        actor=ACTOR,
        action=action,
        at=SystemClock().now(),
        request_id=request_id,
        correlation_id=logger.get_correlation_id(),
        details={
            "alarm_name": alarm.alarm_name,
            "alarm_arn": alarm.alarm_arn,
            "reason": reason,
            "previous_state": alarm.previous_state,
            "alarm_time": alarm.at,
            "kill_switch_read": "ok" if read_ok else f"failed: {before.reason}",
            "kill_switch_was_on": before.on if read_ok else None,
            "kept_reason": after.reason if action == "killswitch.already_on" else None,
        },
    )
    logger.warning(
        "kill-switch engaged by alarm" if action == "killswitch.on" else "kill-switch re-affirmed",
        extra={"alarm": alarm.alarm_name, "reason": reason, "read_ok": read_ok},
    )
    return {"alarm": alarm.alarm_name, "action": action}


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        alarms = parse(event)
    except (ValidationError, json.JSONDecodeError) as exc:
        logger.set_correlation_id(context.aws_request_id)
        logger.warning("rejected event that is not a CloudWatch alarm notification")
        metrics.add_metric(name=mn.REJECTED_EVENTS.name, unit=MetricUnit.Count, value=1)
        if isinstance(exc, ValidationError):
            return rejected("alarm", exc)
        return {"status": "rejected", "error": "invalid alarm event: message is not JSON"}
    logger.set_correlation_id(f"alarm:{alarms[0].alarm_name}:{alarms[0].at or 'unknown'}")
    rid = context.aws_request_id
    results = [_act(alarm, rid if i == 0 else f"{rid}-{i}") for i, alarm in enumerate(alarms)]
    return {"status": "ok", "results": results}
