"""Execution Lambda: hourly (EventBridge), after the hourly candles reach the lake.

Thin: validate the event → :class:`TradingCycle` → JSON. The scan's decisions (NEW orders) go
through the RiskGuard again and to the paper venue, whose book lives in the state table; open
orders fill once their bar is in the lake; positions, equity, daily PnL and drawdown are updated
and the RiskGuard level moves (EMERGENCY / SHUTDOWN turn the kill-switch on). The schedule sends
``{}``: the cycle runs on the function's own clock. ``{"at": ...}`` replays a cycle at a past
instant (`cst demo`), and only a deployment that allows replays (``CST_ALLOW_REPLAYS``) honours
it; any other refuses it as a rejected request. ``{"action": "golive_cancel_orders", "run_id",
"failure"}`` is the go-live rollback's order step on a testnet / live deployment (the state
machine's ``CancelOpenOrders`` task): this function holds the venue's keys and runs one at a
time, so the rollback's cancels go through the venue by the execution service's sweep and never
race a cycle (``GoLiveService.cancel_open_orders``; it raises on failure, so the task fails and
is retried). Go-live SLIs under this deployment's Stage:
Requests/Errors per invocation (a scheduled cycle that cannot run is an error and raises), the
cycle's strategy and reference returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.key_permissions import KeyRefusedError
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.clock import Clock, FixedClock
from cryptosmarttrader.handlers._common import (
    Refused,
    ScheduledRunError,
    aws_clients,
    deployment,
    lambda_handler,
    make_logger,
    make_metrics,
    resources,
    stage_metrics,
    trading_settings,
)
from cryptosmarttrader.ports import MarketData
from cryptosmarttrader.services.trading_cycle import CycleInputError
from cryptosmarttrader.wiring import (
    lake_market_data,
    resolve_data_dir,
    rollback_sweep,
    trading_cycle,
)

logger = make_logger("execution")
metrics = make_metrics("execution")
tracer = Tracer(service="execution")
_REFUSED = "execution request rejected"


class RollbackOrders(BaseModel):
    """The go-live rollback's order step (the state machine's ``CancelOpenOrders`` task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["golive_cancel_orders"]
    run_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    failure: dict[str, Any] | None = None


class ExecutionEvent(BaseModel):
    """``{}`` on the schedule (now); ``at`` (ISO 8601 with offset) replays a past instant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime | None = None

    @field_validator("at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(UTC):
            raise ValueError(f"{value.isoformat()} is in the future: only past instants replay")
        return value


_EVENT: TypeAdapter[ExecutionEvent | RollbackOrders] = TypeAdapter(ExecutionEvent | RollbackOrders)


def _rollback_orders(request: RollbackOrders) -> dict[str, Any]:
    """Cancel the open orders at the deployment's venue for the go-live rollback."""
    from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.services.golive import GoLiveService, failure_from

    clock = SystemClock()
    clients, res = aws_clients(), resources()
    logger.append_keys(run_id=request.run_id)
    golive = GoLiveService(
        store=DynamoStateStore(res.state_table, clients.dynamodb),
        orders=DynamoOrderStore(res.orders_table, clients.dynamodb),
        kill_switch=SsmKillSwitch(res.kill_switch_param, clients.ssm, clock, cache_seconds=0),
        clock=clock,
        venue_sweep=rollback_sweep(clock, clients, res, trading_settings(), EmfMetrics(metrics)),
    )
    result = golive.cancel_open_orders(request.run_id, failure_from(request.failure, "Unknown"))
    logger.warning(
        "go-live rollback: open orders cancelled",
        extra={k: result[k] for k in ("venue", "canceled", "kept", "in_doubt") if k in result},
    )
    return result


@cache
def _market() -> MarketData:
    settings = trading_settings()
    if settings.data_source == "recorded":
        return RecordedMarketData(resolve_data_dir(settings.data_dir))
    return lake_market_data(aws_clients().s3, resources(), settings.exchange)


@lambda_handler(
    logger=logger,
    event=_EVENT,
    what="execution",
    metrics=metrics,
    tracer=tracer,
    stage_slis=True,
)
def handler(request: ExecutionEvent | RollbackOrders, context: LambdaContext) -> dict[str, Any]:
    if isinstance(request, RollbackOrders):
        return _rollback_orders(request)
    if request.at is not None and not deployment().allow_replays:
        raise Refused(
            f"replays are not allowed on this deployment (stage {deployment().stage}): it trades "
            "on its own clock; `at` is honoured only where CST_ALLOW_REPLAYS=true (local and "
            "replay deployments)",
            log_message=_REFUSED,
        )
    clock: Clock = SystemClock() if request.at is None else FixedClock(request.at.astimezone(UTC))
    try:
        cycle = trading_cycle(
            _market(), clock, aws_clients(), resources(), trading_settings(),
            EmfMetrics(metrics), stage_metrics(),
        )  # fmt: skip
        report = cycle.run()
    except KeyRefusedError as exc:
        # the cycle abstains: nothing is sent with a key that could move funds
        logger.error("exchange keys refused", extra={"reason": str(exc)})
        metrics.add_metric(name=mn.VENUE_KEYS_REFUSED.name, unit=MetricUnit.Count, value=1)
        raise Refused(str(exc), log_message="execution cycle abstained: keys refused") from exc
    except CycleInputError as exc:
        if request.at is None:  # the schedule's own cycle could not run: a failure, not a no
            raise ScheduledRunError(f"scheduled execution cycle could not run: {exc}") from exc
        raise Refused(str(exc), log_message=_REFUSED) from exc
    logger.info(
        "execution cycle complete",
        extra={
            "at": report.at.isoformat(),
            "dispatched": report.dispatched,
            "cancelled_new": report.cancelled_new,
            "fills_applied": report.fills_applied,
            "equity": report.equity,
            "risk_level": report.risk_level,
            "risk_transition": report.risk_transition,
            "market_data": report.market_data,
        },
    )
    if not report.market_data_fresh:
        logger.warning(
            "execution cycle without fresh market data", extra={"reason": report.market_data}
        )
    return {"status": "ok", "report": report.model_dump(mode="json")}
