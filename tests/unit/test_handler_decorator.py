"""The handlers' decorator: correlation id, validation, refusals, failures and the stage SLIs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.handlers import _common
from cryptosmarttrader.handlers._common import (
    Refused,
    ScheduledRunError,
    lambda_handler,
    make_logger,
    make_metrics,
)
from cst_devtools.moto_shims import emf_points, emf_records


@dataclass
class _Context:
    function_name: str = "cst-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:cst-test"
    aws_request_id: str = "request-1"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    top_n: int = Field(default=5, ge=1)
    refuse: str | None = None
    fail: bool = False


class _GateInputError(ValueError):
    pass


logger = make_logger("cst-test")
metrics = make_metrics("cst-test")
seen: dict[str, Any] = {}


@lambda_handler(logger=logger, event=_Event, what="test", metrics=metrics, stage_slis=True)
def handler(request: _Event, context: Any) -> dict[str, Any]:
    seen["correlation_id"] = logger.get_correlation_id()
    if request.refuse:
        raise Refused(request.refuse, log_message="test request refused")
    if request.fail:
        raise ScheduledRunError("scheduled test could not run: no data")
    return {"status": "ok", "top_n": request.top_n}


@lambda_handler(
    logger=logger, event=_Event, invalid=lambda exc: _GateInputError(f"{exc.error_count()} bad")
)
def gate(request: _Event, context: Any) -> dict[str, Any]:
    return {"top_n": request.top_n}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CryptoSmartTrader")
    monkeypatch.setenv("CST_STAGE", "canary")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    _common.reset_caches()
    seen.clear()
    yield
    _common.reset_caches()


def _points(out: str) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for point in emf_points(emf_records(out)):
        values.setdefault(point["name"], []).append(point["value"])
    return values


def test_a_valid_event_is_served_and_counted_once_without_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an EventBridge scheduled event
    event = {"detail-type": "Scheduled Event", "id": "evt-42", "detail": {"top_n": 3}}

    # When the handler runs
    result = handler(event, _Context())

    # Then the body got the validated request, the logs the event id, the stage one request
    assert result == {"status": "ok", "top_n": 3}
    assert seen["correlation_id"] == "evt-42"
    points = _points(capsys.readouterr().out)
    assert (points["Requests"], points["Errors"]) == ([1], [0])
    assert "RejectedEvents" not in points


def test_a_malformed_event_is_rejected_with_its_fields_and_touches_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When an event with an unknown field and a bad value arrives
    result = handler({"top_n": 0, "extra": 1, "correlation_id": "c-7"}, _Context())

    # Then the body never ran; the answer names both problems; it is a rejection, not an error
    assert seen == {}
    assert result["status"] == "rejected"
    assert result["error"] == "invalid test event: 2 error(s)"
    assert sorted(tuple(d["loc"]) for d in result["details"]) == [("extra",), ("top_n",)]
    points = _points(capsys.readouterr().out)
    assert (points["Requests"], points["Errors"], points["RejectedEvents"]) == ([1], [0], [1])


def test_a_refusal_is_answered_as_a_rejection(capsys: pytest.CaptureFixture[str]) -> None:
    result = handler({"refuse": "replays are not allowed"}, _Context())

    assert result == {"status": "rejected", "error": "replays are not allowed"}
    points = _points(capsys.readouterr().out)
    assert (points["Requests"], points["Errors"], points["RejectedEvents"]) == ([1], [0], [1])


def test_a_failure_is_counted_as_an_error_and_raised(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScheduledRunError, match="no data"):
        handler({"fail": True}, _Context())

    points = _points(capsys.readouterr().out)
    assert (points["Requests"], points["Errors"]) == ([1], [1])


def test_the_correlation_id_falls_back_to_the_request_id() -> None:
    handler({}, _Context(aws_request_id="request-9"))

    assert seen["correlation_id"] == "request-9"


def test_a_state_machine_task_fails_on_a_malformed_event() -> None:
    # Given a handler whose malformed event must fail its task (Catch → rollback)
    with pytest.raises(_GateInputError, match="1 bad") as raised:
        gate({"top_n": "many"}, _Context())

    # Then the validation error is the cause, and a valid event is served
    assert isinstance(raised.value.__cause__, ValidationError)
    assert gate({"top_n": 2}, _Context()) == {"top_n": 2}


class _Change(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    kind: str = Field(alias="detail-type")
    operation: str


def _parse_change(event: dict[str, Any]) -> _Change:
    """Two steps (envelope, then detail): a parser, not one model."""
    detail = event.get("detail")
    return _Change.model_validate({**event, **(detail if isinstance(detail, dict) else {})})


@lambda_handler(logger=logger, event=_parse_change, what="change", envelope=True)
def audit(request: _Change, context: Any) -> dict[str, Any]:
    seen["correlation_id"] = logger.get_correlation_id()
    return {"id": request.id, "kind": request.kind, "operation": request.operation}


def test_an_envelope_handler_gets_the_whole_eventbridge_event_through_its_parser() -> None:
    # Given an EventBridge event whose id and type the handler needs beside its detail
    event = {
        "detail-type": "Parameter Store Change",
        "id": "evt-7",
        "detail": {"operation": "Update"},
    }

    # When the handler runs, the parser saw the envelope, and the logs carry the event id
    assert audit(event, _Context()) == {
        "id": "evt-7",
        "kind": "Parameter Store Change",
        "operation": "Update",
    }
    assert seen["correlation_id"] == "evt-7"


def test_a_parser_s_validation_error_is_a_rejection() -> None:
    result = audit({"detail-type": "Scheduled Event", "source": "aws.events"}, _Context())

    assert seen == {}
    assert result["status"] == "rejected"
    assert result["error"] == "invalid change event: 2 error(s)"
    assert sorted(tuple(d["loc"]) for d in result["details"]) == [("id",), ("operation",)]
