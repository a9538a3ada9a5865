"""Metrics port adapters: CloudWatch EMF through Powertools ``Metrics``, and an in-memory recorder.

Powertools keeps one dimension set per flush, so a metric with its own dimensions is emitted
as a ``single_metric`` EMF record at once; plain metrics are buffered until :meth:`flush` (or
the handler's ``@metrics.log_metrics``). Keep dimensions low-cardinality (exchange, timeframe,
code): every distinct combination is a billed CloudWatch metric.

:class:`StageMetrics` publishes the go-live SLIs, whose dimension set is ``{Stage}`` alone (no
``service``): see :mod:`cryptosmarttrader.domain.metric_names`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools import Metrics as PowertoolsMetrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from cryptosmarttrader.domain.slo import DEPLOYMENT_STAGES, STAGE_DIMENSION, DeploymentStage

if TYPE_CHECKING:
    from cryptosmarttrader.domain.metric_names import MetricSpec

__all__ = [
    "METRICS_NAMESPACE",
    "EmfMetrics",
    "InMemoryMetrics",
    "InMemorySlis",
    "RecordedMetric",
    "StageMetrics",
]

METRICS_NAMESPACE = "CryptoSmartTrader"


def _unit(unit: str) -> MetricUnit:
    try:
        return MetricUnit(unit)
    except ValueError as exc:
        raise ValueError(f"unknown CloudWatch unit {unit!r}") from exc


class EmfMetrics:
    """The ``Metrics`` port over a Powertools ``Metrics`` instance (EMF to stdout → CloudWatch)."""

    def __init__(self, metrics: PowertoolsMetrics) -> None:
        self._metrics = metrics

    def add(
        self,
        name: str,
        value: float,
        unit: str = "Count",
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        if not dimensions:
            self._metrics.add_metric(name=name, unit=_unit(unit), value=value)
            return
        with single_metric(
            name=name,
            unit=_unit(unit),
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions=dict(dimensions),
        ) as metric:
            service = self._metrics.service
            if service:
                metric.add_dimension(name="service", value=service)

    def flush(self) -> None:
        self._metrics.flush_metrics()


def _sli_values(values: tuple[tuple[MetricSpec, float], ...]) -> None:
    if not values:
        raise ValueError("no SLI value to publish")
    for spec, _ in values:
        if not spec.is_sli or spec.dimensions != (STAGE_DIMENSION,):
            raise ValueError(f"{spec.name} is not a go-live SLI (dimensioned by Stage only)")


class StageMetrics:
    """The ``SliRecorder`` port: one EMF record per call, dimensioned ``Stage=<stage>`` only.

    CloudWatch matches a metric by its whole dimension set and the SLO gate asks for
    ``{Stage}``, so Powertools' ``service`` dimension must not be added: the EMF provider is
    given an empty service name (Powertools adds ``service`` only when the name is non-empty,
    whatever ``POWERTOOLS_SERVICE_NAME`` says). The record is printed at once, so an SLI of a
    failing invocation is published even when the handler raises right after.
    ``POWERTOOLS_METRICS_DISABLED`` silences it like every Powertools metric.
    """

    def __init__(self, stage: DeploymentStage, namespace: str = METRICS_NAMESPACE) -> None:
        if stage not in DEPLOYMENT_STAGES:
            raise ValueError(f"stage must be one of {DEPLOYMENT_STAGES}, got {stage!r}")
        if not namespace:
            raise ValueError("a CloudWatch namespace is required")
        self.stage = stage
        self.namespace = namespace

    def emit(self, *values: tuple[MetricSpec, float]) -> None:
        _sli_values(values)
        provider = AmazonCloudWatchEMFProvider(
            namespace=self.namespace,
            service="",
            default_dimensions={STAGE_DIMENSION: self.stage},
        )
        for spec, value in values:
            provider.add_metric(name=spec.name, unit=_unit(spec.unit), value=value)
        provider.flush_metrics()


@dataclass(frozen=True)
class RecordedMetric:
    name: str
    value: float
    unit: str
    dimensions: tuple[tuple[str, str], ...]


@dataclass
class InMemoryMetrics:
    """Records every metric (tests, CLI summaries). ``flush`` moves the buffer to ``flushed``."""

    pending: list[RecordedMetric] = field(default_factory=list)
    flushed: list[RecordedMetric] = field(default_factory=list)

    def add(
        self,
        name: str,
        value: float,
        unit: str = "Count",
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        _unit(unit)
        dims = tuple(sorted((dimensions or {}).items()))
        self.pending.append(RecordedMetric(name, float(value), unit, dims))

    def flush(self) -> None:
        self.flushed.extend(self.pending)
        self.pending.clear()

    @property
    def all(self) -> list[RecordedMetric]:
        return [*self.flushed, *self.pending]

    def total(self, name: str, **dimensions: str) -> float:
        """Sum of ``name`` over records whose dimensions include ``dimensions``."""
        want = set(dimensions.items())
        return sum(m.value for m in self.all if m.name == name and want <= set(m.dimensions))

    def values(self, name: str) -> list[float]:
        return [m.value for m in self.all if m.name == name]


@dataclass
class InMemorySlis:
    """Records SLIs like :class:`StageMetrics` would publish them (tests, CLI summaries)."""

    stage: DeploymentStage = "staging"
    recorded: list[RecordedMetric] = field(default_factory=list)

    def emit(self, *values: tuple[MetricSpec, float]) -> None:
        _sli_values(values)
        for spec, value in values:
            dims = ((STAGE_DIMENSION, self.stage),)
            self.recorded.append(RecordedMetric(spec.name, float(value), spec.unit, dims))

    def total(self, name: str) -> float:
        return sum(m.value for m in self.recorded if m.name == name)
