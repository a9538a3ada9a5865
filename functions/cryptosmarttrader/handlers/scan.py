"""Scan Lambda: scheduled (EventBridge) or invoked with an as-of date for replays.

Thin by design: validate the event (pydantic) → ScanService → JSON-able response. Settings and
clients are built once per execution environment (cold start), never per invocation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.sanitize import sanitized_json
from cryptosmarttrader.services.scan import ScanInputError, ScanService
from cryptosmarttrader.settings import AwsResources, TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer, resolve_data_dir, scan_service

logger = Logger(json_serializer=sanitized_json)
metrics = Metrics()
tracer = Tracer()


class ScanEvent(BaseModel):
    """The scheduled input `{"top_n": 20}`; `asof` (YYYY-MM-DD) replays a past date."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    top_n: int = Field(default=20, ge=1, le=1000)
    asof: date | None = None
    id: str | None = None  # EventBridge event id, when the full envelope is delivered


@cache
def _service() -> ScanService:
    settings = TradingSettings()
    resources = AwsResources()
    if settings.data_source != "recorded":
        raise ScanInputError(
            f"scan data source {settings.data_source!r} is not wired yet: set CST_DATA_SOURCE=recorded"
        )
    analyzer = recorded_analyzer(resolve_data_dir(settings.data_dir), SystemClock(), settings)
    return scan_service(analyzer, AwsClients.build(resources), resources, EmfMetrics(metrics))


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(
        str(event.get("id") or event.get("correlation_id") or context.aws_request_id)
    )
    try:
        request = ScanEvent.model_validate(event)
    except ValidationError as exc:
        logger.warning("rejected malformed scan event", extra={"errors": exc.errors()})
        metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
        return {
            "status": "rejected",
            "error": f"invalid scan event: {exc.error_count()} error(s)",
            "details": exc.errors(include_url=False, include_input=False),
        }
    service = _service()
    asof = (
        datetime(request.asof.year, request.asof.month, request.asof.day, tzinfo=UTC)
        if request.asof
        else service.clock.now()
    )
    try:
        report = service.run(asof, request.top_n)
    except ScanInputError as exc:
        logger.warning("scan input rejected", extra={"reason": str(exc)})
        return {"status": "rejected", "error": str(exc)}
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
