"""Metrics port adapters: CloudWatch EMF through Powertools ``Metrics``, and an in-memory recorder.

Powertools keeps one dimension set per flush, so a metric with its own dimensions is emitted
as a ``single_metric`` EMF record at once; plain metrics are buffered until :meth:`flush` (or
the handler's ``@metrics.log_metrics``). Keep dimensions low-cardinality (exchange, timeframe,
code): every distinct combination is a billed CloudWatch metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_lambda_powertools import Metrics as PowertoolsMetrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

__all__ = ["METRICS_NAMESPACE", "EmfMetrics", "InMemoryMetrics", "RecordedMetric"]

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
