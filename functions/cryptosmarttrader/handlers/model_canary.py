"""Model-canary step Lambda: the tasks of the model-canary state machine.

``{"action": "start_shadow" | "start_canary" | "evaluate" | "promote" | "rollback",
"version": N, "asof": "YYYY-MM-DD"?, "failure": {...}?}``. Thin: validate → ``CanaryService`` →
JSON the state machine's Choice states read (``evaluate`` returns ``verdict``: ``advance`` or
``rollback`` with the reasons and both models' out-of-sample scores).

``"group": "cst-rank"`` addresses the ranking model the scan serves instead: ``promote`` (the
skill gate, then the ranking endpoint ``CST_RANKING_ENDPOINT`` is deployed to serve it when the
stack enables one) and ``deploy`` (serve the production version on that endpoint again, e.g.
after the endpoint was switched on); its other steps belong to the daily classifier's canary.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.handlers._common import (
    aws_clients,
    lambda_handler,
    make_logger,
    resources,
    trading_settings,
)
from cryptosmarttrader.services.model_lifecycle import CanaryService, LifecycleError
from cryptosmarttrader.services.model_registry import ModelRegistryService
from cryptosmarttrader.settings import MlSettings
from cryptosmarttrader.wiring import (
    RANKING_GROUP,
    excluded_coins,
    lake_market_data,
    registry_service,
    resolve_data_dir,
)

logger = make_logger("model-canary")
tracer = Tracer(service="model-canary")


class CanaryEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["start_shadow", "start_canary", "evaluate", "promote", "rollback", "deploy"]
    version: int = Field(ge=1)
    asof: date | None = None
    reason: str = Field(default="", max_length=500)
    failure: dict[str, Any] | None = None  # the Catch result that led to a rollback
    group: Literal["cst-rank"] | None = None  # None: the daily classifier (CST_MODEL_GROUP)

    @model_validator(mode="after")
    def _ranking_actions(self) -> CanaryEvent:
        if self.group == RANKING_GROUP and self.action not in ("promote", "deploy"):
            raise ValueError(
                f"{RANKING_GROUP} versions are promoted or deployed; {self.action} is a step of "
                "the daily classifier's canary"
            )
        if self.group is None and self.action == "deploy":
            raise ValueError("deploy serves the ranking model: give group cst-rank")
        return self


@cache
def _service() -> CanaryService:
    settings, clock = trading_settings(), SystemClock()
    registry = registry_service(MlSettings(), resources(), aws_clients(), clock)
    if settings.data_source == "recorded":
        recorded = RecordedMarketData(resolve_data_dir(settings.data_dir))
        return CanaryService(
            registry, recorded, TreeEnsemblePredictor.from_bytes, excluded=excluded_coins(recorded)
        )
    market = lake_market_data(aws_clients().s3, resources(), settings.exchange)
    return CanaryService(registry, market, TreeEnsemblePredictor.from_bytes)


@cache
def _ranking() -> ModelRegistryService:
    """The ranking model's registry (the one the scan reads), deploying the ranking endpoint
    when the stack names one."""
    return registry_service(
        MlSettings(), resources(), aws_clients(), SystemClock(), group=RANKING_GROUP
    )


def _ranking_step(request: CanaryEvent) -> dict[str, Any]:
    service = _ranking()
    if request.action == "promote":
        done = service.promote(request.version, request.reason or "promoted", "model-canary")
        logger.info("ranking model promoted", extra={"version": done.label})
        result: dict[str, Any] = {
            "version": done.version, "stage": str(done.stage), "group": RANKING_GROUP,
        }  # fmt: skip
        if service.deployer is not None:
            deployed = getattr(service.deployer, "last", None)  # the promotion's deployment
            result["endpoint"] = service.deployer.endpoint
            result["deployment"] = str(getattr(deployed, "action", ""))
            result.update(_serving(done.version, str(getattr(deployed, "status", "unknown"))))
        return result
    if service.deployer is None:
        raise LifecycleError(
            f"no ranking endpoint is configured (CST_RANKING_ENDPOINT): {RANKING_GROUP} is "
            "scored in process by the scan, nothing to deploy"
        )
    deployment = service.deployer.deploy(service.get(request.version))
    logger.info("ranking model deployed", extra={"deployment": str(deployment)})
    return {
        "version": request.version,
        "group": RANKING_GROUP,
        "endpoint": service.deployer.endpoint,
        "deployment": str(getattr(deployment, "action", "")),
        **_serving(request.version, str(getattr(deployment, "status", "unknown"))),
    }


def _serving(version: int, status: str) -> dict[str, str]:
    """The endpoint's state after a deployment: creating or updating it is asynchronous (and an
    update that fails is rolled back), so it is not done until the endpoint is InService on
    the version, and the scan's ranking abstains until then."""
    if status == "InService":
        return {"endpoint_status": status, "serving": f"v{version}"}
    return {
        "endpoint_status": status,
        "serving": (
            f"updating: not done until the endpoint is InService on v{version}; the scan's "
            "ranking abstains until then (DescribeEndpoint shows the outcome)"
        ),
    }


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


@lambda_handler(
    logger=logger, event=CanaryEvent, what="model canary", tracer=tracer, log_event=True
)
def handler(request: CanaryEvent, context: LambdaContext) -> dict[str, Any]:
    if request.group == RANKING_GROUP:
        return _ranking_step(request)
    service = _service()
    v = request.version
    if request.action == "start_shadow":
        done = service.start(v, "shadow", request.reason or "canary: shadow predictions")
    elif request.action == "start_canary":
        done = service.start(v, "canary", request.reason or "canary: passed the shadow gate")
    elif request.action == "promote":
        done = service.promote(v, request.reason or "canary: beat the incumbent")
    elif request.action == "rollback":
        cause = (request.failure or {}).get("Cause") or request.reason or "canary rolled back"
        done = service.rollback(v, str(cause)[:500])
    else:
        asof = request.asof or service.registry.clock.now().date()
        evaluation = service.evaluate(v, datetime(asof.year, asof.month, asof.day, tzinfo=UTC))
        logger.info(
            "canary evaluated",
            extra={"verdict": evaluation.decision.verdict, "reasons": evaluation.decision.reasons},
        )
        return {
            "version": v,
            "verdict": evaluation.decision.verdict,
            "reasons": list(evaluation.decision.reasons),
            "summary": "; ".join(evaluation.decision.reasons),
            "incumbent": evaluation.incumbent.version if evaluation.incumbent else None,
            "scores": {
                who: {k: _clean(x) for k, x in score.items()}
                for who, score in evaluation.scores.items()
            },
            "window": [d.isoformat() for d in evaluation.window] if evaluation.window else None,
        }
    logger.info("model stage changed", extra={"version": done.label, "stage": str(done.stage)})
    return {
        "version": done.version,
        "stage": str(done.stage),
        "capital_fraction": done.capital_fraction,
    }
