"""SLO gate Lambda: read the stage's metrics (CloudWatch GetMetricData), decide, store, answer.

Thin: validate the event (pydantic) → :class:`SloService` → ``{"passed", "summary", ...}`` for
the state machine's Choice. The evaluation is stored in the state table (pk ``slo``). A metric
read that fails raises (→ Catch → rollback); missing data is a breach, never a pass.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from cryptosmarttrader.adapters.cloudwatch_metric_reader import (
    CloudWatchMetricReader,
    cloudwatch_client,
)
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.golive import GoLiveParams, Stage
from cryptosmarttrader.handlers._common import (
    aws_clients,
    lambda_handler,
    make_logger,
    resources,
)
from cryptosmarttrader.services.golive import GoLiveSettings, SloService

logger = make_logger("cst-golive-slo")


class SloGateInputError(ValueError):
    """The gate's event is malformed (the state machine turns this into a rollback)."""


class SloEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Literal[Stage.STAGING, Stage.CANARY]
    params: GoLiveParams


@cache
def _service() -> SloService:
    res = resources()
    settings = GoLiveSettings()
    return SloService(
        reader=CloudWatchMetricReader(settings.metrics_namespace, cloudwatch_client(res)),
        store=DynamoStateStore(res.state_table, aws_clients().dynamodb),
        clock=SystemClock(),
        thresholds=settings.thresholds(),
    )


def _invalid(exc: ValidationError) -> SloGateInputError:
    return SloGateInputError(
        f"invalid SLO gate event: {exc.error_count()} error(s): "
        + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    )


@lambda_handler(logger=logger, event=SloEvent, invalid=_invalid)
def handler(request: SloEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(run_id=request.params.run_id, stage=str(request.stage))
    evaluation = _service().evaluate(request.params, Stage(request.stage))
    logger.info(
        "SLO gate evaluated", extra={"passed": evaluation.passed, "summary": evaluation.summary}
    )
    return evaluation.model_dump(
        mode="json", include={"evaluation_id", "run_id", "stage", "passed", "summary", "reasons"}
    )
