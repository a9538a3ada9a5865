"""Health probe Lambda: scheduled (EventBridge), runs the deep health check of ``GET /api/v1/health``
and publishes the stage's uptime sample (``ProbeSuccess`` / ``ProbeFailure``, ``Stage=<stage>``).

Thin: the checks and the verdict are :class:`HealthService`'s. A probe that cannot even run
(a client or a setting that fails to build) is published as a failed probe, never as a gap: the
uptime SLI must not look better because the thing measuring it broke. The failing components are
named in the log line (``failing``: ``name: status: detail``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cryptosmarttrader.adapters.health import dependency_probes
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.handlers._common import (
    aws_clients,
    lambda_handler,
    make_logger,
    resources,
    stage_metrics,
    trading_settings,
)
from cryptosmarttrader.services.health import HealthService, publish_probe

logger = make_logger("cst-health-probe")


@cache
def _service() -> HealthService:
    return HealthService(
        probes=dependency_probes(aws_clients(), resources(), trading_settings()),
        clock=SystemClock(),
    )


@lambda_handler(logger=logger)  # no request: the schedule's event id is the correlation id
def handler(_request: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    slis = stage_metrics()  # an invalid CST_STAGE fails here: no stage to publish under
    logger.append_keys(stage=slis.stage)
    try:
        result = _service().probe(slis)
    except Exception as exc:  # a probe that cannot run is a failed probe
        reason = f"probe: {type(exc).__name__}: {sanitize_text(str(exc))}"
        logger.exception("health probe could not run", extra={"failing": [reason]})
        publish_probe(slis, passed=False)
        return {"passed": False, "stage": slis.stage, "failing": [reason]}
    if result.passed:
        logger.info("health probe passed", extra={"checks": len(result.checks)})
    else:
        logger.error("health probe failed", extra={"failing": result.failing})
    return {"stage": slis.stage, **result.model_dump(mode="json")}
