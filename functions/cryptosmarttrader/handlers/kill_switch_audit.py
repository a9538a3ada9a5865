"""Audit every write of the kill-switch parameter, whoever makes it, with the real principal.

The product's own writers (API, CLI, alarm function, RiskGuard, go-live) audit their changes
with the actor they assert. A direct ``aws ssm put-parameter`` (or any other writer) does not.
Two EventBridge rules deliver the parameter's changes here:

* **"AWS API Call via CloudTrail"** (source ``aws.ssm``, ``eventName`` ``PutParameter`` /
  ``DeleteParameter`` / ``DeleteParameters`` / ``LabelParameterVersion``): the event carries the
  caller in ``detail.userIdentity`` (``type``, ``arn``, the role behind an assumed-role session,
  ``invokedBy`` for a service), ``sourceIPAddress``, ``userAgent`` and, for ``PutParameter``,
  the new version in ``responseElements.version``. EventBridge only receives these when a
  CloudTrail **trail** with management (write) events is logging in the account and region —
  the 90-day Event history alone does not deliver them.
* **"Parameter Store Change"** (``detail.operation`` Create / Update / Delete /
  LabelParameterVersion, ``name``, ``type``): sent by Parameter Store itself, with or without a
  trail, but it names NO principal. It is recorded as a change by an unknown principal, so an
  account without a trail still sees every out-of-band write, just not who made it.

Each entry: actor = the principal's ARN (or ``unknown``), action ``ssm.<eventName>`` or
``ssm.parameter.<operation>``, the event's own time and id as the audit key (a redelivered
event finds its entry and is not recorded twice), and the value written (read back at that
version: on, reason and the actor it claims) beside who really wrote it.

The entry point is on the handlers' decorator (``handlers._common.lambda_handler``): the logs
carry the EventBridge event id as correlation id, :func:`parse` validates the whole envelope
(the event's id, type and time are part of the entry), and an event of another shape is
answered ``rejected`` with its fields, writing nothing.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cryptosmarttrader.adapters.audit import DuplicateAuditEntryError, DynamoAuditTrail
from cryptosmarttrader.domain.killswitch import printable
from cryptosmarttrader.handlers._common import (
    aws_clients,
    lambda_handler,
    make_logger,
    resources,
)

logger = make_logger("kill-switch-audit")

UNKNOWN_PRINCIPAL: Final = "unknown (Parameter Store Change events name no principal)"
_VALUE_CHARS: Final = 600
CLOUDTRAIL: Final = "AWS API Call via CloudTrail"
PARAMETER_STORE: Final = "Parameter Store Change"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _SessionIssuer(_Loose):
    arn: str | None = None
    type: str | None = None


class _SessionContext(_Loose):
    session_issuer: _SessionIssuer | None = Field(default=None, alias="sessionIssuer")


class UserIdentity(_Loose):
    type: str = "Unknown"
    arn: str | None = None
    principal_id: str | None = Field(default=None, alias="principalId")
    account_id: str | None = Field(default=None, alias="accountId")
    invoked_by: str | None = Field(default=None, alias="invokedBy")
    session_context: _SessionContext | None = Field(default=None, alias="sessionContext")


class CloudTrailDetail(_Loose):
    event_source: Literal["ssm.amazonaws.com"] = Field(alias="eventSource")
    event_name: str = Field(alias="eventName", min_length=1)
    event_time: AwareDatetime = Field(alias="eventTime")
    user_identity: UserIdentity = Field(alias="userIdentity")
    source_ip: str | None = Field(default=None, alias="sourceIPAddress")
    user_agent: str | None = Field(default=None, alias="userAgent")
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(default=None, alias="responseElements")
    error_code: str | None = Field(default=None, alias="errorCode")


class ParameterStoreDetail(_Loose):
    operation: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: str | None = None


class EventBridgeEvent(_Loose):
    id: str = Field(min_length=1, max_length=128)
    detail_type: Literal["AWS API Call via CloudTrail", "Parameter Store Change"] = Field(
        alias="detail-type"
    )
    source: Literal["aws.ssm"]
    time: AwareDatetime
    detail: dict[str, Any]


class Change(_Loose):
    """What one event says about one write of the parameter."""

    event_id: str
    at: AwareDatetime
    source: Literal["cloudtrail", "parameter-store"]
    action: str
    names: tuple[str, ...]
    principal: str
    details: dict[str, Any]
    version: int | None = None


def _cloudtrail(event: EventBridgeEvent) -> Change:
    detail = CloudTrailDetail.model_validate(event.detail)
    who = detail.user_identity
    params = detail.request_parameters or {}
    names = params.get("names") or [params.get("name")]
    version = (detail.response_elements or {}).get("version")
    issuer = who.session_context.session_issuer if who.session_context else None
    return Change(
        event_id=event.id,
        at=detail.event_time,
        source="cloudtrail",
        action=f"ssm.{detail.event_name}",
        names=tuple(str(n) for n in names if n),
        principal=who.arn or who.invoked_by or who.principal_id or f"unknown {who.type}",
        version=int(version) if isinstance(version, int | str) and str(version).isdigit() else None,
        details={
            "principal_type": who.type,
            "principal_account": who.account_id,
            "role": issuer.arn if issuer else None,
            "invoked_by": who.invoked_by,
            "source_ip": detail.source_ip,
            "user_agent": detail.user_agent,
            "error_code": detail.error_code,
        },
    )


def _parameter_store(event: EventBridgeEvent) -> Change:
    detail = ParameterStoreDetail.model_validate(event.detail)
    return Change(
        event_id=event.id,
        at=event.time,
        source="parameter-store",
        action=f"ssm.parameter.{detail.operation}",
        names=(detail.name,),
        principal=UNKNOWN_PRINCIPAL,
        details={"operation": detail.operation, "note": "enable a CloudTrail trail to see who"},
    )


def parse(event: dict[str, Any]) -> Change:
    """Either event shape → a :class:`Change`. Raises ``ValidationError`` for anything else."""
    envelope = EventBridgeEvent.model_validate(event)
    return (
        _cloudtrail(envelope) if envelope.detail_type == CLOUDTRAIL else _parameter_store(envelope)
    )


def stored_value(ssm: Any, name: str, version: int | None) -> dict[str, Any]:
    """The value at ``version`` (or the current one): on, reason and the actor it claims."""
    selector = name if version is None else f"{name}:{version}"
    try:
        raw = ssm.get_parameter(Name=selector)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        return {"read": f"failed: {exc}"}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"read": "not JSON", "raw": printable(str(raw), _VALUE_CHARS)}
    if not isinstance(value, dict):
        return {"read": "not an object", "raw": printable(str(raw), _VALUE_CHARS)}
    return {
        "read": "ok",
        "version": version,
        "on": value.get("on"),
        "reason": printable(str(value.get("reason", "")), _VALUE_CHARS),
        "claimed_actor": printable(str(value.get("actor", "")), 256),
        "golive_rollback": printable(str(value.get("golive_rollback") or ""), 80) or None,
    }


@cache
def _audit() -> DynamoAuditTrail:
    return DynamoAuditTrail(resources().state_table, aws_clients().dynamodb)


@lambda_handler(logger=logger, event=parse, what="kill-switch change", envelope=True)
def handler(change: Change, context: LambdaContext) -> dict[str, Any]:
    name = resources().kill_switch_param
    if name not in change.names:
        logger.info("change of another parameter ignored", extra={"names": list(change.names)})
        return {"status": "ignored", "names": list(change.names)}
    written = (
        stored_value(aws_clients().ssm, name, change.version)
        if change.action in {"ssm.PutParameter", "ssm.parameter.Create", "ssm.parameter.Update"}
        else {}
    )
    try:
        entry = _audit().record(
            actor=printable(change.principal, 512) or "unknown",
            action=change.action,
            at=change.at,
            request_id=change.event_id,
            correlation_id=context.aws_request_id,
            details={
                "source": change.source,
                "parameter": name,
                **change.details,
                "value": written,
            },
        )
    except DuplicateAuditEntryError:
        logger.info("event already audited (redelivery)", extra={"event_id": change.event_id})
        return {"status": "duplicate", "event_id": change.event_id}
    logger.info(
        "kill-switch write audited",
        extra={"principal": change.principal, "action": change.action, "source": change.source},
    )
    return {"status": "ok", "audit_id": entry.sort_key, "principal": entry.actor}
