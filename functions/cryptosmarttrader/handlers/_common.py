"""Helpers shared by the Lambda handlers: settings and clients (parsed once per execution
environment), Powertools Logger / Metrics factories, the stage's SLI publisher, EventBridge
unwrapping, correlation ids, the uniform "rejected event" result and the scheduled-run error,
and :func:`lambda_handler`, the decorator that makes each handler read as validate → service →
response.

Rejected vs failed: a *rejection* answers a caller whose request is malformed or refused
(``status: rejected``, ``RejectedEvents``; the stage's ``Errors`` SLI stays 0). A scheduled
invocation that cannot do its job is a *failure*: :func:`count_invocation` publishes
``Errors`` 1 and the handler raises :class:`ScheduledRunError`, so Lambda counts the error too,
retries it, dead-letters it, and the ``StageErrors`` / ``LambdaErrors`` alarms fire."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.emf_metrics import METRICS_NAMESPACE, StageMetrics
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.sanitize import sanitized_json
from cryptosmarttrader.handlers._lean import rejected
from cryptosmarttrader.settings import AwsResources, DeploymentSettings, TradingSettings

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

__all__ = [
    "Refused",
    "ScheduledRunError",
    "aws_clients",
    "correlation_id",
    "count_invocation",
    "deployment",
    "lambda_handler",
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


class Refused(Exception):  # noqa: N818 - a refusal is an answer, not an error of ours
    """A caller's request this deployment will not run; nothing was touched. Raised by a
    :func:`lambda_handler` body, it is answered ``{"status": "rejected", "error": reason}``,
    counted as ``RejectedEvents`` and logged as a warning (``log_message``); the stage's
    ``Errors`` SLI stays 0."""

    def __init__(self, reason: str, *, log_message: str = "request rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_message = log_message


# a pydantic model, a TypeAdapter, or a parser that raises ValidationError (several shapes)
Event = type[BaseModel] | TypeAdapter[Any] | Callable[[dict[str, Any]], Any]
Body = Callable[[Any, LambdaContext], Any]
# the context is Lambda's (or a stand-in with its attributes: local runs, tests, the chaos lab)
Handler = Callable[[dict[str, Any], Any], Any]


def lambda_handler(
    *,
    logger: Logger,
    event: Event | None = None,
    what: str = "",
    metrics: Metrics | None = None,
    tracer: Tracer | None = None,
    stage_slis: bool = False,
    log_event: bool = False,
    cold_start_metric: bool = True,
    invalid: Callable[[ValidationError], Exception] | None = None,
    envelope: bool = False,
) -> Callable[[Body], Handler]:
    """One Lambda entry point: the body gets the validated request and returns the response.

    * correlation id: the EventBridge event id, else the event's ``correlation_id``, else the
      request id (:func:`request_payload`), set on ``logger`` before anything else;
    * validation: ``event`` (a pydantic model, a ``TypeAdapter``, or a parser raising
      ``ValidationError``) parses the payload — the ``detail`` of an EventBridge envelope, or
      the whole envelope with ``envelope=True`` (a handler that needs its id, type and time);
      without ``event`` the body gets the payload itself. A malformed event raises ``invalid(exc)`` when given
      (a state machine's task that must fail), else is answered :func:`rejected` (logged, and
      counted in ``RejectedEvents`` when the handler has ``metrics``);
    * a :class:`Refused` from the body is answered ``{"status": "rejected", "error": ...}``;
    * ``stage_slis``: one ``Requests`` and ``Errors`` 0 or 1 of this deployment's stage per
      invocation — 1 for any exception the body raises (a :class:`ScheduledRunError` included),
      which is raised on, so Lambda counts, retries and dead-letters it too;
    * Powertools: ``metrics.log_metrics`` (outermost), ``logger.inject_lambda_context``,
      ``tracer.capture_lambda_handler``, each when given.
    """

    def decorate(body: Body) -> Handler:
        @functools.wraps(body)
        def run(raw: dict[str, Any], context: LambdaContext) -> Any:
            payload = request_payload(raw, context, logger)
            if envelope:
                payload = raw
            slis = stage_metrics() if stage_slis else None  # an invalid CST_STAGE fails here
            try:
                request = _validate(event, payload)
            except ValidationError as exc:
                if invalid is not None:
                    raise invalid(exc) from exc
                _count(slis, failed=False)
                return _reject_malformed(what, exc, logger, metrics)
            try:
                response = body(request, context)
            except Refused as refusal:
                _count(slis, failed=False)
                logger.warning(refusal.log_message, extra={"reason": refusal.reason})
                if metrics is not None:
                    metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
                return {"status": "rejected", "error": refusal.reason}
            except Exception:
                _count(slis, failed=True)
                raise
            _count(slis, failed=False)
            return response

        handler: Handler = run
        if tracer is not None:
            handler = tracer.capture_lambda_handler(handler)
        handler = logger.inject_lambda_context(log_event=log_event)(handler)
        if metrics is not None:
            handler = metrics.log_metrics(capture_cold_start_metric=cold_start_metric)(handler)
        return handler

    return decorate


def _validate(event: Event | None, payload: dict[str, Any]) -> Any:
    if event is None:
        return payload
    if isinstance(event, TypeAdapter):
        return event.validate_python(payload)
    if isinstance(event, type) and issubclass(event, BaseModel):
        return event.model_validate(payload)
    parse: Callable[[dict[str, Any]], Any] = event
    return parse(payload)


def _count(slis: StageMetrics | None, *, failed: bool) -> None:
    if slis is not None:
        count_invocation(slis, failed=failed)


def _reject_malformed(
    what: str, exc: ValidationError, logger: Logger, metrics: Metrics | None
) -> dict[str, Any]:
    if metrics is not None:
        return reject_malformed(what, exc, logger, metrics)
    logger.warning(f"rejected malformed {what} event", extra={"errors": exc.error_count()})
    return rejected(what, exc)
