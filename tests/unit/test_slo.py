"""SLO math and the gate decision: hand-computed inputs with known answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from cryptosmarttrader.domain.slo import (
    MetricQuery,
    SliName,
    SloSamples,
    SloThresholds,
    burn_rate,
    evaluate_slo,
    percentile,
    samples_from_series,
    slo_queries,
    tracking_error_bps,
    uptime_ratio,
)
from cryptosmarttrader.domain.types import DomainError


def _healthy(**overrides: object) -> SloSamples:
    base: dict[str, object] = {
        "probe_successes": 1000.0,
        "probe_failures": 2.0,
        "p95_latency_ms": 420.0,
        "strategy_returns": (0.0010, 0.0020, -0.0005),
        "reference_returns": (0.0011, 0.0019, -0.0004),
        "requests": 10_000.0,
        "errors": 10.0,
    }
    base.update(overrides)
    return SloSamples(**base)  # type: ignore[arg-type]


def test_uptime_is_successes_over_all_probes() -> None:
    # Given 995 good and 5 failed probes / When the ratio is computed / Then it is 99.5 %
    assert uptime_ratio(995, 5) == pytest.approx(0.995)
    # And no probe at all is "unknown", not 100 %
    assert uptime_ratio(0, 0) is None


def test_nearest_rank_p95() -> None:
    # Given latencies 1..100 ms (shuffled) / Then p95 is the 95th smallest and p100 the largest
    values = [float(v) for v in reversed(range(1, 101))]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    # And with 10 values, rank ceil(9.5) = 10: the largest
    assert percentile([float(v) for v in range(10)], 95) == 9.0
    assert percentile([], 95) is None
    with pytest.raises(DomainError):
        percentile([1.0], 0)


def test_tracking_error_is_std_of_return_differences_in_bps() -> None:
    # Given differences of +10, -10, +10, -10 bps (mean 0, sample std = sqrt(400/3) bps)
    strategy = [0.001, -0.001, 0.001, -0.001]
    reference = [0.0, 0.0, 0.0, 0.0]
    # When / Then
    assert tracking_error_bps(strategy, reference) == pytest.approx(math.sqrt(400 / 3) * 1.0)
    # And a constant offset has no tracking error
    assert tracking_error_bps([0.002, 0.003], [0.001, 0.002]) == pytest.approx(0.0, abs=1e-9)
    # And one period cannot measure dispersion
    assert tracking_error_bps([0.1], [0.0]) is None
    with pytest.raises(DomainError, match="aligned"):
        tracking_error_bps([0.1, 0.2], [0.0])


def test_burn_rate_is_error_ratio_over_budget() -> None:
    # Given a 99.5 % objective (0.5 % budget) and 1 % errors / Then the budget burns twice as fast
    assert burn_rate(100, 10_000, 0.995) == pytest.approx(2.0)
    assert burn_rate(0, 10, 0.995) == 0.0
    assert burn_rate(0, 0, 0.995) is None
    with pytest.raises(DomainError, match="more errors"):
        burn_rate(11, 10, 0.995)


def test_healthy_window_passes_with_a_reason_per_sli() -> None:
    # Given samples inside every objective
    decision = evaluate_slo(_healthy(), SloThresholds())
    # Then the gate passes, with each SLI measured and no failure reason
    assert decision.passed
    assert [r.name for r in decision.results] == list(SliName)
    assert decision.reasons == ()
    assert decision.summary.startswith("all SLOs met")


@pytest.mark.parametrize(
    ("overrides", "breached"),
    [
        ({"probe_failures": 6.0, "probe_successes": 994.0}, SliName.UPTIME),
        ({"p95_latency_ms": 1000.0}, SliName.P95_LATENCY_MS),
        ({"strategy_returns": (0.003, -0.003, 0.003)}, SliName.TRACKING_ERROR_BPS),
        ({"errors": 51.0}, SliName.ERROR_BUDGET_BURN_RATE),
    ],
)
def test_each_objective_can_fail_the_gate(overrides: dict[str, object], breached: SliName) -> None:
    # Given one SLI just outside its objective
    decision = evaluate_slo(_healthy(**overrides), SloThresholds())
    # Then the gate fails and the reason names exactly that SLI
    assert not decision.passed
    failed = [r.name for r in decision.results if not r.passed]
    assert failed == [breached]
    assert "breaches" in decision.reasons[0]


def test_missing_data_fails_closed() -> None:
    # Given a window where nothing was measured
    empty = SloSamples(0, 0, None, (), (), 0, 0)
    # When the gate evaluates it
    decision = evaluate_slo(empty, SloThresholds())
    # Then every SLI fails with a "no data" reason
    assert not decision.passed
    assert len(decision.reasons) == 4
    assert all("no data" in reason for reason in decision.reasons)


def test_thresholds_are_validated() -> None:
    with pytest.raises(DomainError):
        SloThresholds(min_uptime=1.5)
    with pytest.raises(DomainError):
        SloThresholds(max_p95_latency_ms=float("nan"))


def test_queries_cover_every_sli_for_the_stage() -> None:
    # Given a canary gate over 3 hours in 5-minute periods
    queries = slo_queries("canary", 10_800, 300)
    # Then every query is dimensioned by the stage, counts span the window, returns the period
    assert {q.dimensions for q in queries} == {(("Stage", "canary"),)}
    by_id = {q.query_id: q for q in queries}
    assert by_id["latencyp95"].stat == "p95"
    assert by_id["probeok"].period_seconds == 10_800
    assert by_id["strategy"].period_seconds == 300


def test_samples_pair_returns_by_bucket_and_sum_counts() -> None:
    # Given two buckets of returns (one reference bucket missing) and split counts
    t0, t1, t2 = (datetime(2024, 1, 1, 0, m, tzinfo=UTC) for m in (0, 1, 2))
    series = {
        "probeok": [(t0, 500.0), (t1, 497.0)],
        "probefail": [(t0, 3.0)],
        "latencyp95": [(t0, 300.0), (t1, 700.0)],
        "strategy": [(t0, 12.0), (t1, -8.0), (t2, 5.0)],
        "reference": [(t0, 10.0), (t1, -10.0)],
        "requests": [(t0, 100.0)],
    }
    # When the samples are built
    samples = samples_from_series(series)
    # Then counts are summed, p95 is the worst bucket, returns are paired fractions
    assert samples.probe_successes == 997.0
    assert samples.probe_failures == 3.0
    assert samples.p95_latency_ms == 700.0
    assert samples.strategy_returns == (0.0012, -0.0008)
    assert samples.reference_returns == (0.001, -0.001)
    assert samples.errors == 0.0


def test_query_ids_and_periods_are_validated() -> None:
    with pytest.raises(DomainError):
        MetricQuery("Bad", "X", "Sum", 60, ())
    with pytest.raises(DomainError):
        MetricQuery("ok", "X", "Sum", 90, ())
