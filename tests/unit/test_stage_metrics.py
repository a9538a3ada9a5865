"""The go-live SLI publisher: one EMF record in the product namespace, dimensioned Stage only."""

from __future__ import annotations

import pytest

from cryptosmarttrader.adapters.emf_metrics import InMemorySlis, StageMetrics
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.slo import slo_queries
from cst_devtools.moto_shims import emf_points, emf_records


@pytest.fixture(autouse=True)
def _powertools_service(monkeypatch: pytest.MonkeyPatch) -> None:
    # as in every deployed function: Powertools would add this as a `service` dimension
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cst-api")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CryptoSmartTrader")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def test_one_record_carries_the_stage_the_namespace_and_no_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the canary's publisher
    slis = StageMetrics("canary")

    # When a scan run's SLIs are published together
    slis.emit((mn.REQUESTS, 1), (mn.ERRORS, 0), (mn.DECISION_LATENCY, 412.5))

    # Then one EMF record holds them, in the namespace, with the dimension set {Stage} only
    (record,) = emf_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "CryptoSmartTrader"
    assert directive["Dimensions"] == [["Stage"]]
    assert record["Stage"] == "canary"
    assert "service" not in record
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Requests": "Count",
        "Errors": "Count",
        "DecisionLatency": "Milliseconds",
    }
    assert (record["Requests"], record["Errors"], record["DecisionLatency"]) == ([1], [0], [412.5])


def test_what_it_publishes_is_what_the_gate_queries(capsys: pytest.CaptureFixture[str]) -> None:
    # Given every SLI this system produces, published for staging
    StageMetrics("staging").emit((mn.PROBE_SUCCESS, 1), (mn.PROBE_FAILURE, 0))
    StageMetrics("staging").emit((mn.REQUESTS, 1), (mn.ERRORS, 1), (mn.DECISION_LATENCY, 80))
    points = emf_points(emf_records(capsys.readouterr().out))

    # When the staging gate's queries are compared with the published metrics
    wanted = {(q.metric, q.dimensions) for q in slo_queries("staging", 3600, 60)}
    published = {(p["name"], tuple(p["dimensions"].items())) for p in points}

    # Then each published metric is one the gate reads (same name, same whole dimension set);
    # the two return metrics are the ones left to the execution path
    assert published <= wanted
    assert {name for name, _ in wanted - published} == {"StrategyReturnBps", "ReferenceReturnBps"}


def test_a_record_is_printed_per_call_so_a_failing_invocation_still_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    slis = StageMetrics("production")

    slis.emit((mn.REQUESTS, 1), (mn.ERRORS, 1))
    first = emf_records(capsys.readouterr().out)
    slis.emit((mn.REQUESTS, 1), (mn.ERRORS, 0))
    second = emf_records(capsys.readouterr().out)

    assert [(r["Requests"], r["Errors"]) for r in (*first, *second)] == [([1], [1]), ([1], [0])]


def test_refuses_unknown_stages_and_metrics_that_are_not_slis() -> None:
    with pytest.raises(ValueError, match="stage"):
        StageMetrics("prod")  # type: ignore[arg-type]
    slis = StageMetrics("staging")
    # ApiRequests carries route/status and the service: not a gate metric
    with pytest.raises(ValueError, match="not a go-live SLI"):
        slis.emit((mn.API_REQUESTS, 1))
    with pytest.raises(ValueError, match="no SLI value"):
        slis.emit()
    with pytest.raises(ValueError, match="not a go-live SLI"):
        InMemorySlis().emit((mn.UNIVERSE_SIZE, 1))


def test_metrics_disabled_publishes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    StageMetrics("staging").emit((mn.PROBE_SUCCESS, 1), (mn.PROBE_FAILURE, 0))

    assert emf_records(capsys.readouterr().out) == []
