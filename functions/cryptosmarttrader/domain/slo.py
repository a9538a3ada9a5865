"""Service-level objectives of a go-live stage: pure math and the gate decision with reasons.

Four SLIs decide whether a stage may be promoted:

* **uptime** — successful health probes / all probes, objective ``>= 99.5 %``;
* **p95 latency** — 95th percentile of decision latency, objective ``< 1000 ms``;
* **tracking error** — standard deviation of (strategy − reference) per-period returns, in basis
  points, objective ``< 20 bps``;
* **error-budget burn rate** — observed request error ratio divided by the error budget
  ``1 − availability objective``; ``1.0`` spends the budget exactly over the window, the gate
  allows at most ``max_burn_rate``.

Missing data never passes: a gate without samples for an SLI fails with a reason saying so
(fail closed), because a stage nobody measured is not a stage that met its objectives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal, get_args

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "BPS",
    "DEPLOYMENT_STAGES",
    "SLO_METRICS",
    "STAGE_DIMENSION",
    "DeploymentStage",
    "MetricQuery",
    "SliName",
    "SliResult",
    "SloDecision",
    "SloSamples",
    "SloThresholds",
    "burn_rate",
    "evaluate_slo",
    "percentile",
    "samples_from_series",
    "slo_queries",
    "tracking_error_bps",
    "uptime_ratio",
]

BPS = 10_000.0


class SliName(StrEnum):
    UPTIME = "uptime"
    P95_LATENCY_MS = "p95_latency_ms"
    TRACKING_ERROR_BPS = "tracking_error_bps"
    ERROR_BUDGET_BURN_RATE = "error_budget_burn_rate"


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise DomainError(f"{name} must be finite, got {value!r}")
    return value


def uptime_ratio(successes: float, failures: float) -> float | None:
    """Successful probes / all probes; None when there was no probe at all."""
    _finite("successes", successes)
    _finite("failures", failures)
    if successes < 0 or failures < 0:
        raise DomainError(f"probe counts must be >= 0, got {successes} and {failures}")
    total = successes + failures
    return None if total == 0 else successes / total


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``q`` % of values <= it).

    None for no values. ``q`` in (0, 100].
    """
    if not 0 < q <= 100:
        raise DomainError(f"percentile must be in (0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(_finite("latency", float(v)) for v in values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def tracking_error_bps(
    strategy_returns: Sequence[float], reference_returns: Sequence[float]
) -> float | None:
    """Sample standard deviation of per-period return differences, in basis points.

    Returns are fractions (0.001 = 10 bps) of aligned periods. None for fewer than two periods:
    one difference has no dispersion to measure.
    """
    if len(strategy_returns) != len(reference_returns):
        raise DomainError(
            f"tracking error needs aligned series, got {len(strategy_returns)} "
            f"and {len(reference_returns)} periods"
        )
    diffs = [
        _finite("strategy return", float(s)) - _finite("reference return", float(r))
        for s, r in zip(strategy_returns, reference_returns, strict=True)
    ]
    n = len(diffs)
    if n < 2:
        return None
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return math.sqrt(variance) * BPS


def burn_rate(errors: float, requests: float, availability_objective: float) -> float | None:
    """Error ratio over the error budget ``1 - objective``; None without requests."""
    _finite("errors", errors)
    _finite("requests", requests)
    if not 0 < availability_objective < 1:
        raise DomainError(f"availability objective must be in (0, 1), got {availability_objective}")
    if errors < 0 or requests < 0:
        raise DomainError(f"request counts must be >= 0, got {errors} errors / {requests}")
    if errors > requests:
        raise DomainError(f"more errors ({errors}) than requests ({requests})")
    if requests == 0:
        return None
    return (errors / requests) / (1 - availability_objective)


@dataclass(frozen=True, slots=True)
class SloThresholds:
    """The objectives. Defaults are the product's go-live SLOs."""

    min_uptime: float = 0.995
    max_p95_latency_ms: float = 1000.0
    max_tracking_error_bps: float = 20.0
    availability_objective: float = 0.995
    max_burn_rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.min_uptime <= 1:
            raise DomainError(f"min_uptime must be in (0, 1], got {self.min_uptime}")
        if not 0 < self.availability_objective < 1:
            raise DomainError(
                f"availability_objective must be in (0, 1), got {self.availability_objective}"
            )
        for name in ("max_p95_latency_ms", "max_tracking_error_bps", "max_burn_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DomainError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True)
class SloSamples:
    """What was measured over one window (aggregates read from the metrics store)."""

    probe_successes: float
    probe_failures: float
    p95_latency_ms: float | None
    strategy_returns: tuple[float, ...]
    reference_returns: tuple[float, ...]
    requests: float
    errors: float


@dataclass(frozen=True, slots=True)
class SliResult:
    name: SliName
    value: float | None
    objective: str
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class SloDecision:
    """The gate's verdict: passed only if every SLI was measured and met its objective."""

    passed: bool
    results: tuple[SliResult, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the gate failed (empty when it passed)."""
        return tuple(r.reason for r in self.results if not r.passed)

    @property
    def summary(self) -> str:
        if self.passed:
            return "all SLOs met: " + "; ".join(r.reason for r in self.results)
        return "SLO breach: " + "; ".join(self.reasons)


def _check(
    name: SliName, value: float | None, objective: str, ok: bool, shown: str, missing: str
) -> SliResult:
    if value is None:
        return SliResult(name, None, objective, False, f"{name}: no data ({missing})")
    verdict = "meets" if ok else "breaches"
    return SliResult(name, value, objective, ok, f"{name} {shown} {verdict} {objective}")


def evaluate_slo(samples: SloSamples, thresholds: SloThresholds) -> SloDecision:
    """Gate decision over one window's samples; every failing SLI gives its reason."""
    uptime = uptime_ratio(samples.probe_successes, samples.probe_failures)
    p95 = samples.p95_latency_ms
    if p95 is not None:
        _finite("p95 latency", p95)
    te = tracking_error_bps(samples.strategy_returns, samples.reference_returns)
    burn = burn_rate(samples.errors, samples.requests, thresholds.availability_objective)
    results = (
        _check(
            SliName.UPTIME,
            uptime,
            f">= {thresholds.min_uptime:.2%}",
            uptime is not None and uptime >= thresholds.min_uptime,
            f"{uptime:.3%}" if uptime is not None else "",
            "no health probe in the window",
        ),
        _check(
            SliName.P95_LATENCY_MS,
            p95,
            f"< {thresholds.max_p95_latency_ms:g} ms",
            p95 is not None and p95 < thresholds.max_p95_latency_ms,
            f"{p95:.1f} ms" if p95 is not None else "",
            "no latency sample in the window",
        ),
        _check(
            SliName.TRACKING_ERROR_BPS,
            te,
            f"< {thresholds.max_tracking_error_bps:g} bps",
            te is not None and te < thresholds.max_tracking_error_bps,
            f"{te:.2f} bps" if te is not None else "",
            "fewer than two periods with both strategy and reference returns",
        ),
        _check(
            SliName.ERROR_BUDGET_BURN_RATE,
            burn,
            f"<= {thresholds.max_burn_rate:g}x",
            burn is not None and burn <= thresholds.max_burn_rate,
            f"{burn:.2f}x" if burn is not None else "",
            "no request in the window",
        ),
    )
    return SloDecision(passed=all(r.passed for r in results), results=results)


# --------------------------------------------------------------------------- metric contract

STAGE_DIMENSION: Final = "Stage"
# The stage a deployment serves (``CST_STAGE``): the value of the ``Stage`` dimension its
# functions publish the SLIs under, and the one a gate reads.
DeploymentStage = Literal["staging", "canary", "production"]
DEPLOYMENT_STAGES: Final[tuple[DeploymentStage, ...]] = get_args(DeploymentStage)
PROBE_SUCCESS: Final = "ProbeSuccess"
PROBE_FAILURE: Final = "ProbeFailure"
DECISION_LATENCY: Final = "DecisionLatency"
STRATEGY_RETURN: Final = "StrategyReturnBps"
REFERENCE_RETURN: Final = "ReferenceReturnBps"
REQUESTS: Final = "Requests"
ERRORS: Final = "Errors"
SLO_METRICS: Final = (
    PROBE_SUCCESS,
    PROBE_FAILURE,
    DECISION_LATENCY,
    STRATEGY_RETURN,
    REFERENCE_RETURN,
    REQUESTS,
    ERRORS,
)


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One statistic of one metric over a window, in ``period_seconds`` buckets."""

    query_id: str
    metric: str
    stat: str
    period_seconds: int
    dimensions: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if not self.query_id or not self.query_id[0].islower() or not self.query_id.isalnum():
            raise DomainError(
                f"query id must start lowercase and be alphanumeric: {self.query_id!r}"
            )
        if self.period_seconds <= 0 or self.period_seconds % 60:
            raise DomainError(
                f"period must be a positive multiple of 60 s, got {self.period_seconds}"
            )


Series = Sequence[tuple[datetime, float]]


def slo_queries(stage: str, window_seconds: int, period_seconds: int) -> tuple[MetricQuery, ...]:
    """The GetMetricData queries one gate needs, for metrics dimensioned ``Stage=<stage>``.

    Counts are summed over the whole window (one bucket); p95 latency is CloudWatch's own
    percentile over the window; returns are per-period averages so tracking error sees the
    dispersion between periods.
    """
    dims = ((STAGE_DIMENSION, stage),)
    return (
        MetricQuery("probeok", PROBE_SUCCESS, "Sum", window_seconds, dims),
        MetricQuery("probefail", PROBE_FAILURE, "Sum", window_seconds, dims),
        MetricQuery("latencyp95", DECISION_LATENCY, "p95", window_seconds, dims),
        MetricQuery("strategy", STRATEGY_RETURN, "Average", period_seconds, dims),
        MetricQuery("reference", REFERENCE_RETURN, "Average", period_seconds, dims),
        MetricQuery("requests", REQUESTS, "Sum", window_seconds, dims),
        MetricQuery("errors", ERRORS, "Sum", window_seconds, dims),
    )


def _total(series: Series) -> float:
    return sum(_finite("metric value", float(v)) for _, v in series)


def samples_from_series(series: Mapping[str, Series]) -> SloSamples:
    """Aggregate the answers to :func:`slo_queries` into :class:`SloSamples`.

    A window split into several buckets is summed (counts) or judged by its worst bucket
    (p95). Returns are paired by bucket time; a bucket with only one of the two is dropped.
    Return metrics are published in basis points and converted to fractions here.
    """
    latency = [float(v) for _, v in series.get("latencyp95", ())]
    strategy = {ts: float(v) for ts, v in series.get("strategy", ())}
    reference = {ts: float(v) for ts, v in series.get("reference", ())}
    paired = sorted(set(strategy) & set(reference))
    return SloSamples(
        probe_successes=_total(series.get("probeok", ())),
        probe_failures=_total(series.get("probefail", ())),
        p95_latency_ms=max(latency) if latency else None,
        strategy_returns=tuple(strategy[ts] / BPS for ts in paired),
        reference_returns=tuple(reference[ts] / BPS for ts in paired),
        requests=_total(series.get("requests", ())),
        errors=_total(series.get("errors", ())),
    )
