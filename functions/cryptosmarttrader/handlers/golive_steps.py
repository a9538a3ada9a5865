"""Go-live step Lambda: the state machine's stage starts, promotion and rollback compensation.

One function, one action per task (``action`` in the event). Thin: validate the event
(pydantic) → :class:`GoLiveService` → JSON result. A malformed event or a failed step RAISES:
the state machine catches every task error and rolls back, so nothing may fail silently here.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
from cryptosmarttrader.adapters.sns_notifier import SnsNotifier, sns_client
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.golive import GoLiveParams, Stage
from cryptosmarttrader.handlers._common import (
    aws_clients,
    lambda_handler,
    make_logger,
    resources,
)
from cryptosmarttrader.services.golive import (
    PROMOTE_REASON,
    GoLiveService,
    GoLiveSettings,
    canary_reason,
    failure_from,
    staging_reason,
)

logger = make_logger("cst-golive")

RUN_ID = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")


class GoLiveInputError(ValueError):
    """The step's event is malformed (the state machine turns this into a rollback)."""


class StartStage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["start_stage"]
    stage: Literal[Stage.STAGING, Stage.CANARY]
    run_id: Annotated[str, RUN_ID]
    params: dict[str, Any]


class Promote(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["promote"]
    params: GoLiveParams


class Compensate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["kill_switch", "cancel_orders", "revert_version"]
    run_id: Annotated[str, RUN_ID]
    failure: dict[str, Any] | None = None


class RecordRollback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["record_rollback"]
    run_id: Annotated[str, RUN_ID]
    failure: dict[str, Any] | None = None
    steps: dict[str, Any] = Field(default_factory=dict)


StepEvent = Annotated[
    StartStage | Promote | Compensate | RecordRollback, Field(discriminator="action")
]
_EVENT: TypeAdapter[StartStage | Promote | Compensate | RecordRollback] = TypeAdapter(StepEvent)


@cache
def _service() -> GoLiveService:
    res = resources()
    clients = aws_clients()
    settings = GoLiveSettings()
    clock = SystemClock()
    return GoLiveService(
        store=DynamoStateStore(res.state_table, clients.dynamodb),
        orders=DynamoOrderStore(res.orders_table, clients.dynamodb),
        kill_switch=SsmKillSwitch(res.kill_switch_param, clients.ssm, clock, cache_seconds=0),
        clock=clock,
        notifier=SnsNotifier(settings.topic_arn, sns_client(res)) if settings.topic_arn else None,
    )


def _params(raw: dict[str, Any], run_id: str) -> GoLiveParams:
    given = raw.get("run_id")
    if given is not None and given != run_id:
        raise GoLiveInputError(f"input run_id {given!r} differs from the execution name {run_id!r}")
    try:
        return GoLiveParams.model_validate({**raw, "run_id": run_id})
    except ValidationError as exc:
        raise GoLiveInputError(f"invalid go-live parameters: {_errors(exc)}") from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
    )


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {k: str(run[k]) for k in ("run_id", "stage", "status") if k in run}


def _invalid(exc: ValidationError) -> GoLiveInputError:
    return GoLiveInputError(f"invalid go-live step event: {_errors(exc)}")


@lambda_handler(logger=logger, event=_EVENT, invalid=_invalid)
def handler(
    request: StartStage | Promote | Compensate | RecordRollback, context: LambdaContext
) -> dict[str, Any]:
    service = _service()
    if isinstance(request, StartStage):
        logger.append_keys(run_id=request.run_id)
        params = _params(request.params, request.run_id)
        stage = Stage(request.stage)
        reason = staging_reason(params) if stage is Stage.STAGING else canary_reason(params)
        run = service.start_stage(params, stage, reason)
        logger.info("go-live stage started", extra=_run_view(run))
        return params.model_dump(mode="json")
    if isinstance(request, Promote):
        logger.append_keys(run_id=request.params.run_id)
        run = service.promote(request.params, PROMOTE_REASON)
        logger.info("go-live promoted", extra={"version": request.params.version})
        return _run_view(run)
    failure = failure_from(request.failure, "Unknown")
    logger.append_keys(run_id=request.run_id)
    if isinstance(request, RecordRollback):
        run = service.record_rollback(request.run_id, failure, request.steps)
        logger.warning("go-live rolled back", extra={"reason": failure.reason})
        return _run_view(run) | {"reason": str(run.get("reason", ""))}
    if request.action == "kill_switch":
        return service.engage_kill_switch(request.run_id, failure)
    if request.action == "cancel_orders":
        return service.cancel_open_orders(request.run_id, failure)
    return service.revert_version(request.run_id, failure)
