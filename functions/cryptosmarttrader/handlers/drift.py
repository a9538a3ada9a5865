"""Drift-check Lambda: scheduled daily (EventBridge), or invoked with an as-of date / version.

Thin: validate the event → ``DriftService.check`` → JSON. PSI / KS of the features and of the
prediction distribution against the version's training reference, calibration decay on the
outcomes whose label horizon has passed; EMF metrics (``ModelDriftAlarm`` raises the CloudWatch
alarm) and the version's ``drift_blocked`` flag, which blocks its promotion.

On the schedule (``{}``) a stack without a production model has nothing to check (``skipped``,
with the reason); a scheduled check that cannot run (no market data, an unreadable model) is a
failure: it counts in the stage's ``Errors`` SLI and raises. The same problems on a request
naming an ``asof`` or ``version`` are the caller's (``rejected``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.handlers._common import (
    Refused,
    ScheduledRunError,
    aws_clients,
    lambda_handler,
    make_logger,
    make_metrics,
    resources,
    trading_settings,
)
from cryptosmarttrader.services.model_lifecycle import DriftService, LifecycleError
from cryptosmarttrader.services.model_registry import (
    MlSettings,
    ModelRegistryError,
)
from cryptosmarttrader.wiring import (
    excluded_coins,
    lake_market_data,
    registry_service,
    resolve_data_dir,
)

logger = make_logger("model-drift")
metrics = make_metrics("model-drift")
tracer = Tracer(service="drift")


class DriftEvent(BaseModel):
    """``{}`` on the schedule (today, the production version); ``asof`` / ``version`` replay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asof: date | None = None
    version: int | None = Field(default=None, ge=1)


@cache
def _service() -> DriftService:
    settings, clock = trading_settings(), SystemClock()
    registry = registry_service(MlSettings(), resources(), aws_clients(), clock)
    if settings.data_source == "recorded":
        recorded = RecordedMarketData(resolve_data_dir(settings.data_dir))
        return DriftService(
            registry,
            recorded,
            TreeEnsemblePredictor.from_bytes,
            EmfMetrics(metrics),
            excluded=excluded_coins(recorded),
        )
    market = lake_market_data(aws_clients().s3, resources(), settings.exchange)
    return DriftService(registry, market, TreeEnsemblePredictor.from_bytes, EmfMetrics(metrics))


@lambda_handler(
    logger=logger, event=DriftEvent, what="drift", metrics=metrics, tracer=tracer, stage_slis=True
)
def handler(request: DriftEvent, context: LambdaContext) -> dict[str, Any]:
    scheduled = request.asof is None and request.version is None
    try:
        service = _service()
        if scheduled and service.registry.production() is None:
            reason = (
                f"{service.registry.registry.group} has no production version: nothing to check"
            )
            logger.info("drift check skipped", extra={"reason": reason})
            return {"status": "skipped", "reason": reason}
        asof = (
            datetime(request.asof.year, request.asof.month, request.asof.day, tzinfo=UTC)
            if request.asof
            else service.registry.clock.now()
        )
        outcome = service.check(asof, request.version)
    except (LifecycleError, ModelRegistryError) as exc:
        if scheduled:
            raise ScheduledRunError(f"scheduled drift check could not run: {exc}") from exc
        raise Refused(str(exc), log_message="drift check request refused") from exc
    report = outcome.report
    logger.info(
        "drift checked",
        extra={"version": outcome.version.label, "status": report.status, "alarms": report.alarms},
    )
    return {
        "status": report.status,
        "version": outcome.version.version,
        "window": [d.isoformat() for d in outcome.window],
        "blocks_promotion": report.blocks_promotion,
        "alarms": list(report.alarms),
        "notes": list(report.notes),
        "drifted_share": report.drifted_share,
        "prediction": None
        if report.prediction is None
        else {"psi": _num(report.prediction.psi), "ks": _num(report.prediction.ks)},
        "calibration": None
        if report.calibration is None
        else {
            "n": report.calibration.n,
            "ece": _num(report.calibration.ece),
            "reference_ece": _num(report.calibration.reference_ece),
            "decay": _num(report.calibration.decay),
        },
        "features": {
            f.name: {"psi": _num(f.psi), "ks": _num(f.ks), "drifted": f.drifted}
            for f in report.features
        },
    }


def _num(value: float) -> float | None:
    return None if value != value else round(value, 6)  # NaN → null
