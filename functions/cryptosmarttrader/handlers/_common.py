"""Helpers shared by the Lambda handlers: settings and clients (parsed once per execution
environment), Powertools Logger / Metrics factories, the stage's SLI publisher, EventBridge
unwrapping, correlation ids, the uniform "rejected event" result and the scheduled-run error.

Rejected vs failed: a *rejection* answers a caller whose request is malformed or refused
(``status: rejected``, ``RejectedEvents``; the stage's ``Errors`` SLI stays 0). A scheduled
invocation that cannot do its job is a *failure*: :func:`count_invocation` publishes
``Errors`` 1 and the handler raises :class:`ScheduledRunError`, so Lambda counts the error too,
retries it, dead-letters it, and the ``StageErrors`` / ``LambdaErrors`` alarms fire."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.emf_metrics import METRICS_NAMESPACE, StageMetrics
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.sanitize import sanitized_json
from cryptosmarttrader.settings import AwsResources, DeploymentSettings, TradingSettings

__all__ = [
    "ScheduledRunError",
    "aws_clients",
    "correlation_id",
    "count_invocation",
    "deployment",
    "make_logger",
    "make_metrics",
    "reject_malformed",
    "rejected",
    "request_payload",
    "reset_caches",
    "resources",
    "stage_metrics",
    "trading_settings",
    "unwrap_eventbridge",
]


def make_logger(service: str) -> Logger:
    return Logger(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", service), json_serializer=sanitized_json
    )


def _namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)


def make_metrics(service: str) -> Metrics:
    return Metrics(
        namespace=_namespace(), service=os.environ.get("POWERTOOLS_SERVICE_NAME", service)
    )


@cache
def resources() -> AwsResources:
    return AwsResources()


@cache
def trading_settings() -> TradingSettings:
    return TradingSettings()


@cache
def aws_clients() -> AwsClients:
    return AwsClients.build(resources())


@cache
def deployment() -> DeploymentSettings:
    return DeploymentSettings()


@cache
def stage_metrics() -> StageMetrics:
    """The go-live SLI publisher of this deployment's stage (``CST_STAGE``)."""
    return StageMetrics(deployment().stage, _namespace())


class ScheduledRunError(RuntimeError):
    """A scheduled invocation could not do its job (no data, a deployment that cannot serve the
    schedule...). Raised after the error is counted; the message says what is missing."""


def count_invocation(slis: StageMetrics, *, failed: bool) -> None:
    """One ``Requests`` and ``Errors`` 0 or 1 of this stage (the burn rate's inputs)."""
    slis.emit((mn.REQUESTS, 1), (mn.ERRORS, 1 if failed else 0))


def reset_caches() -> None:
    """Forget parsed settings and clients (tests that change the environment between runs)."""
    for fn in (resources, trading_settings, aws_clients, deployment, stage_metrics):
        fn.cache_clear()


def unwrap_eventbridge(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """(payload, event id): the ``detail`` of an EventBridge envelope, else the event itself."""
    if "detail-type" in event and isinstance(event.get("detail"), Mapping):
        event_id = event.get("id")
        return event["detail"], str(event_id) if event_id else None
    return event, None


def correlation_id(event: Mapping[str, Any], context: LambdaContext) -> str:
    """The EventBridge event id, else an explicit ``correlation_id``, else the request id."""
    _, event_id = unwrap_eventbridge(event)
    explicit = event.get("correlation_id")
    return str(event_id or explicit or context.aws_request_id)


def request_payload(
    event: Mapping[str, Any], context: LambdaContext, logger: Logger
) -> dict[str, Any]:
    """Adopt the invocation's correlation id in ``logger`` and return the request itself: the
    ``detail`` of an EventBridge envelope (else the event), without the ``correlation_id`` key
    that schedules and Step Functions tasks add for the logs."""
    logger.set_correlation_id(correlation_id(event, context))
    payload, _ = unwrap_eventbridge(event)
    return {k: v for k, v in payload.items() if k != "correlation_id"}


def reject_malformed(
    what: str, exc: ValidationError, logger: Logger, metrics: Metrics
) -> dict[str, Any]:
    """Log and count a malformed event, and answer :func:`rejected` (nothing was touched)."""
    logger.warning(f"rejected malformed {what} event", extra={"errors": exc.error_count()})
    metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
    return rejected(what, exc)


def rejected(what: str, exc: ValidationError) -> dict[str, Any]:
    """The result of a malformed event: no side effects, a message and per-field details."""
    return {
        "status": "rejected",
        "error": f"invalid {what} event: {exc.error_count()} error(s)",
        "details": exc.errors(include_url=False, include_input=False, include_context=False),
    }
