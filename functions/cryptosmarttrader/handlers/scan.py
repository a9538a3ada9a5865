"""Scan Lambda: scheduled (EventBridge) or invoked with an as-of date for replays.

Thin by design: validate the event (pydantic) → ScanService → JSON-able response. Settings and
clients are built once per execution environment (cold start), never per invocation. On AWS the
scan reads the daily candles the ingest Lambda wrote to the S3 lake, and its agents read the
funding rates, mark candles, every venue's hourly candles and the sentiment index from there too
(``LakeAgentData``, as of the decision); it serves the production version of the ranking model
group from the registry's artefact in S3 (``CST_MODEL_DIR``, when set, names a fitted bundle
instead): every invocation reads the registry's production pointer, and a warm environment
reloads the model only when the promoted version changed, so the scan after a promotion or a
rollback serves the new version; a failed read of the pointer leaves the model's agents (ml,
ensemble) abstaining with the reason. With ``CST_DATA_SOURCE=recorded`` it reads the recorded real data in ``CST_DATA_DIR``.
Without a promoted model, on either source, every output says so and the scan orders nothing
(its BUYs become HOLD) unless the deployment opts in to paper trading on the technical agent
alone with ``CST_ALLOW_TECHNICAL_ONLY_TRADING=true``, which every output then states.

Each invocation publishes the stage's SLIs (``Stage=<CST_STAGE>``): one ``Requests``, and one
``Errors`` when the run failed (a rejected event or as-of is the caller's error, not one); the
service publishes a completed run's ``DecisionLatency``. A scheduled run (no ``asof``) that
cannot scan, e.g. because the lake holds no daily bars yet, is a failure: it raises, saying
what it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.handlers._common import (
    Refused,
    ScheduledRunError,
    aws_clients,
    lambda_handler,
    make_logger,
    make_metrics,
    resources,
    stage_metrics,
    trading_settings,
)
from cryptosmarttrader.services.ingest import ingest_breaker_block
from cryptosmarttrader.services.scan import ScanAnalyzer, ScanInputError, ScanService
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import (
    NO_PROMOTED_MODEL,
    NO_PROMOTED_MODEL_TRADING,
    PromotedRanking,
    lake_agent_data,
    lake_market_data,
    promoted_ranking,
    recorded_analyzer,
    resolve_data_dir,
    scan_model,
    scan_service,
)

logger = make_logger("scan")
metrics = make_metrics("scan")
tracer = Tracer(service="scan")


class ScanEvent(BaseModel):
    """The scheduled input `{"top_n": 20}`; `asof` (YYYY-MM-DD) replays a past date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_n: int = Field(default=20, ge=1, le=1000)
    asof: date | None = None


@dataclass(frozen=True)
class _Environment:
    """What one execution environment keeps between invocations: the scan (settings, clients,
    stores, agent data) and, unless ``CST_MODEL_DIR`` names the model, the registry's promoted
    ranking model, whose production pointer is read on every invocation."""

    service: ScanService
    promoted: PromotedRanking | None

    def for_this_run(self) -> ScanService:
        """The scan with the model ``CST_MODEL_DIR`` names, else the registry's promoted
        version as the pointer says now (reloaded only when it changed); without one, the
        reason every output states (and whether it trades, which only
        ``CST_ALLOW_TECHNICAL_ONLY_TRADING=true`` allows)."""
        if self.promoted is None:
            return self.service
        analyzer = self.service.analyzer
        model = self.promoted.current()
        if model is not None:
            return replace(self.service, analyzer=replace(analyzer, model=model))
        reason = (
            NO_PROMOTED_MODEL_TRADING
            if self.service.settings.allow_technical_only_trading
            else NO_PROMOTED_MODEL
        )
        logger.warning("scan without a promoted model", extra={"reason": reason})
        return replace(self.service, analyzer=replace(analyzer, model=None, no_model_reason=reason))


def _analyzer(settings: TradingSettings, clock: SystemClock) -> ScanAnalyzer:
    model = scan_model(settings) if settings.model_dir else None
    trades = settings.allow_technical_only_trading
    if settings.data_source == "recorded":
        recorded = recorded_analyzer(resolve_data_dir(settings.data_dir), clock, settings, model)
        return replace(recorded, no_model_trades=trades)
    res, clients = resources(), aws_clients()
    market = lake_market_data(clients.s3, res, settings.exchange)
    state = DynamoStateStore(res.state_table, clients.dynamodb)
    return ScanAnalyzer(
        market=market,
        clock=clock,
        settings=settings,
        model=model,
        data_health=lambda: ingest_breaker_block(state, settings.exchange, clock.now()),
        agent_data=lake_agent_data(clients.s3, res, settings.exchange),
        no_model_trades=trades,
    )


@cache
def _service() -> _Environment:
    """Built once per execution environment (cold start)."""
    settings, clock = trading_settings(), SystemClock()
    service = scan_service(
        _analyzer(settings, clock), aws_clients(), resources(), EmfMetrics(metrics), stage_metrics()
    )
    promoted = None if settings.model_dir else promoted_ranking(aws_clients(), resources(), clock)
    return _Environment(service, promoted)


def _lake_hint() -> str:
    settings = trading_settings()
    if settings.data_source == "recorded":
        return ""
    return (
        f" (the lake holds no closed daily {settings.exchange} candles in that window: "
        "has the daily ingest run?)"
    )


@lambda_handler(
    logger=logger, event=ScanEvent, what="scan", metrics=metrics, tracer=tracer, stage_slis=True
)
def handler(request: ScanEvent, context: LambdaContext) -> dict[str, Any]:
    try:
        service = _service().for_this_run()
        asof = (
            datetime(request.asof.year, request.asof.month, request.asof.day, tzinfo=UTC)
            if request.asof
            else service.clock.now()
        )
        report = service.run(asof, request.top_n)
    except ScanInputError as exc:
        if request.asof is None:  # the schedule's own scan could not run: a failure
            raise ScheduledRunError(f"scheduled scan could not run: {exc}{_lake_hint()}") from exc
        raise Refused(str(exc), log_message="scan input rejected") from exc
    logger.info(
        "scan complete",
        extra={
            "asof": report.asof.isoformat(),
            "universe": report.universe,
            "orders_created": report.orders_created,
            "duplicates_prevented": report.duplicates_prevented,
        },
    )
    return {"status": "ok", "report": report.model_dump(mode="json")}
