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

The function starts as fast as the stack allows (it stops trading); its cold import is at most
1.5x ``import boto3`` (``bench/bench_cold_import.py``), and it imports only what every ALARM
needs. Measured against ``import boto3`` alone (1.00x, CPU time of fresh processes):

* ``from pydantic import BaseModel`` 1.37x, plus one small model 1.49x: pydantic's model layer
  alone would spend the whole budget. The two event shapes are therefore validated by
  pydantic's validator core (``pydantic_core.SchemaValidator``, +0.05x): the same engine,
  rules and ``ValidationError`` as a pydantic model, so the boundary stays pydantic-validated.
  Defining the models lazily would only move that cost into the first alarm's invocation;
  the audit entry, the switch value and the four settings it reads are validated the same way
  (``adapters/audit``, ``adapters/killswitch_value``, ``handlers/_lean``);
* no boto3: ``import boto3`` adds its S3 transfer manager to botocore, 0.15x; the two clients
  are botocore's (``aws_clients.botocore_client``, same configuration) and the audit item is
  encoded by the codec's own boto3-equal encoder (``adapters/dynamodb_items``);
* its bundle ships CPython 3.12 bytecode (``infra/constructs/bundling.py``): Lambda's
  ``/var/task`` is read-only, so without it every cold start compiled the 531 modules of the
  bundle (2.05x instead of 1.43x, with boto3 still imported);
* Powertools Logger + Metrics: kept (same structured log lines with the correlation id,
  sanitized; same EMF metric), +0.06x on the runtime's Python 3.12 (+0.15x on 3.11, where its
  ``typing_extensions`` import is slower); Powertools Parameters (+0.13x) is not used, the
  switch is one ``GetParameter``; no Powertools Tracer (its X-Ray SDK import is ~0.25 s), Lambda's active
  tracing still records every invocation in X-Ray;
* the audit write needs DynamoDB's item codec only (``adapters/dynamodb_items``), not the order
  and position store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.aws_clients import botocore_client
from cryptosmarttrader.adapters.ssm_killswitch import (
    FAIL_CLOSED_ACTOR,
    KillSwitchStatus,
    SsmKillSwitch,
)
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.killswitch import writable_reason
from cryptosmarttrader.domain.sanitize import sanitize_text, sanitized_json
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.handlers._lean import KillSwitchResources, rejected

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ssm import SSMClient

SERVICE: Final = os.environ.get("POWERTOOLS_SERVICE_NAME", "alarm-killswitch")
logger = Logger(service=SERVICE, json_serializer=sanitized_json)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", mn.NAMESPACE), service=SERVICE
)

ACTOR: Final = "alarm"

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
_STATES = cs.literal_schema(["OK", "ALARM", "INSUFFICIENT_DATA"])


def _field(schema: cs.CoreSchema, default: object = ...) -> cs.TypedDictField:
    if default is ...:
        return cs.typed_dict_field(schema)
    return cs.typed_dict_field(cs.with_default_schema(schema, default=default), required=False)


def _shape(name: str, fields: dict[str, cs.TypedDictField]) -> cs.TypedDictSchema:
    """An object whose other keys are ignored (CloudWatch adds keys over time)."""
    return cs.typed_dict_schema(fields, cls_name=name, extra_behavior="ignore")


_STATE = _shape(
    "State",
    {"value": _field(_STATES), "reason": _field(cs.str_schema(), ""),
     "timestamp": _field(cs.str_schema(), "")},
)  # fmt: skip
# CloudWatch's Lambda alarm action payload
LAMBDA_ALARM_EVENT: Any = SchemaValidator(
    _shape(
        "LambdaAlarmEvent",
        {
            "source": _field(cs.literal_schema(["aws.cloudwatch"])),
            "alarmArn": _field(cs.str_schema(min_length=1)),
            "alarmData": _field(
                _shape(
                    "AlarmData",
                    {
                        "alarmName": _field(cs.str_schema(min_length=1)),
                        "state": _field(_STATE),
                        "previousState": _field(cs.nullable_schema(_STATE), None),
                    },
                )
            ),
        },
    )
)
# An SNS → Lambda event (its records' messages are parsed by SNS_ALARM_MESSAGE)
SNS_EVENT: Any = SchemaValidator(
    _shape(
        "SnsEvent",
        {
            "Records": _field(
                cs.list_schema(
                    _shape(
                        "SnsRecord",
                        {
                            "EventSource": _field(cs.literal_schema(["aws:sns"])),
                            "Sns": _field(_shape("Sns", {"Message": _field(cs.str_schema())})),
                        },
                    ),
                    min_length=1,
                )
            )
        },
    )
)
# The JSON message CloudWatch publishes to an SNS topic
SNS_ALARM_MESSAGE: Any = SchemaValidator(
    _shape(
        "SnsAlarmMessage",
        {
            "AlarmName": _field(cs.str_schema(min_length=1)),
            "AlarmArn": _field(cs.str_schema(), ""),
            "NewStateValue": _field(_STATES),
            "NewStateReason": _field(cs.str_schema(), ""),
            "OldStateValue": _field(cs.nullable_schema(_STATES), None),
            "StateChangeTime": _field(cs.str_schema(), ""),
        },
    )
)


@dataclass(frozen=True)
class AlarmNotification:
    """What both shapes say, normalized."""

    alarm_name: str
    alarm_arn: str
    state: AlarmState
    reason: str
    previous_state: AlarmState | None
    at: str


def parse(event: dict[str, Any]) -> list[AlarmNotification]:
    """Both delivery shapes → notifications. Raises ``ValidationError`` for anything else (an
    SNS message that is not JSON included)."""
    if "Records" in event:
        out = []
        for record in SNS_EVENT.validate_python(event)["Records"]:
            msg = SNS_ALARM_MESSAGE.validate_json(record["Sns"]["Message"])
            out.append(
                AlarmNotification(
                    alarm_name=msg["AlarmName"],
                    alarm_arn=msg["AlarmArn"],
                    state=msg["NewStateValue"],
                    reason=msg["NewStateReason"],
                    previous_state=msg["OldStateValue"],
                    at=msg["StateChangeTime"],
                )
            )
        return out
    direct = LAMBDA_ALARM_EVENT.validate_python(event)
    data = direct["alarmData"]
    previous = data["previousState"]
    return [
        AlarmNotification(
            alarm_name=data["alarmName"],
            alarm_arn=direct["alarmArn"],
            state=data["state"]["value"],
            reason=data["state"]["reason"],
            previous_state=None if previous is None else previous["value"],
            at=data["state"]["timestamp"],
        )
    ]


@cache
def _resources() -> KillSwitchResources:
    return KillSwitchResources.from_environment()


@cache
def _ssm() -> SSMClient:
    return cast(
        "SSMClient", botocore_client("ssm", _resources().region, _resources().aws_endpoint_url)
    )


@cache
def _dynamodb() -> DynamoDBClient:
    return cast(
        "DynamoDBClient",
        botocore_client("dynamodb", _resources().region, _resources().aws_endpoint_url),
    )


@cache
def _kill_switch() -> SsmKillSwitch:
    return SsmKillSwitch(_resources().kill_switch_param, _ssm(), SystemClock(), cache_seconds=0)


@cache
def _audit() -> DynamoAuditTrail:
    return DynamoAuditTrail(_resources().state_table, _dynamodb())


def reset_caches() -> None:
    """Forget settings and clients (tests that change the environment between runs)."""
    for fn in (_resources, _ssm, _dynamodb, _kill_switch, _audit):
        fn.cache_clear()


def _reaffirm_or_engage(
    switch: SsmKillSwitch, before: KillSwitchStatus, alarm_reason: str
) -> tuple[KillSwitchStatus, str]:
    """Write the switch ON, always: re-affirm a value known to be ON (its first reason, actor,
    time and go-live rollback marker kept), otherwise engage it with the alarm's reason. A
    failed write raises."""
    if before.known and before.actor != FAIL_CLOSED_ACTOR and before.on:
        try:
            kept = switch.set(
                True,
                before.reason,
                before.actor,
                at=before.at,
                golive_rollback=before.golive_rollback,
            )
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
    except ValidationError as exc:
        logger.set_correlation_id(context.aws_request_id)
        logger.warning("rejected event that is not a CloudWatch alarm notification")
        metrics.add_metric(name=mn.REJECTED_EVENTS.name, unit=MetricUnit.Count, value=1)
        return rejected("alarm", exc)
    logger.set_correlation_id(f"alarm:{alarms[0].alarm_name}:{alarms[0].at or 'unknown'}")
    rid = context.aws_request_id
    results = [_act(alarm, rid if i == 0 else f"{rid}-{i}") for i, alarm in enumerate(alarms)]
    return {"status": "ok", "results": results}
