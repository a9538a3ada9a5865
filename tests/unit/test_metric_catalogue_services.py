"""A catalogued metric is published under the ``service`` dimension its catalogue entry names:
where the scan function publishes it, that is the scan's service (dashboards, alarms, `cst cost`
and docs/observability.md read the catalogue)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools import Metrics

from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.domain import metric_names as mn
from cst_devtools.moto_shims import emf_points, emf_records
from infra.constructs.scan import SCAN_SERVICE

SCAN_PRODUCER = "services/scan.py"


@pytest.mark.parametrize(
    "spec",
    [s for s in mn.CATALOGUE if SCAN_PRODUCER in s.producers and s.service is not None],
    ids=lambda s: s.name,
)
def test_a_metric_the_scan_publishes_carries_its_catalogued_service(
    spec: mn.MetricSpec, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the scan function's metrics, as the stack configures it
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SCAN_SERVICE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", mn.NAMESPACE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = Metrics()

    # When the scan service publishes the catalogued metric (as services/scan.py does)
    EmfMetrics(metrics).add(spec.name, 1, spec.unit.value)
    metrics.flush_metrics()

    # Then it lands in the series the catalogue names
    (point,) = [
        p for p in emf_points(emf_records(capsys.readouterr().out)) if p["name"] == spec.name
    ]
    assert point["dimensions"].get("service") == spec.service, (
        f"{spec.name} is catalogued under {spec.service}, published by the scan under "
        f"{point['dimensions'].get('service')}"
    )
