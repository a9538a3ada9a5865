"""Deep health: the dependency checks behind ``GET /api/v1/health`` and the scheduled SLO probe.

One verdict serves both: the deployment is healthy when every AWS dependency it runs on
(DynamoDB, S3, SSM) answered. The exchange is checked and reported but not judged: a venue's
outage is not this deployment's downtime, and the ingest circuit breakers already keep its
failures out of the data.

Each scheduled probe publishes ``ProbeSuccess`` and ``ProbeFailure`` (1 and 0, or 0 and 1)
under the deployment's ``Stage``: the uptime SLI of the go-live gates. This module imports no
numpy or polars, so the probe's Lambda bundle stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.health import EXCHANGE_CHECK, HealthCheck, HealthStatus
from cryptosmarttrader.ports import HealthProbe

if TYPE_CHECKING:
    from cryptosmarttrader.ports import SliRecorder

__all__ = [
    "EXCHANGE_CHECK",
    "HealthCheck",
    "HealthProbe",
    "HealthResponse",
    "HealthService",
    "HealthStatus",
    "ProbeResult",
    "publish_probe",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthResponse(_Model):
    status: Literal["ok", "degraded"] = Field(
        description="ok when every AWS dependency answered; the exchange may be unknown"
    )
    checked_at: AwareDatetime
    checks: list[HealthCheck]
    venue_mode: Literal["paper", "testnet", "live"] = Field(
        default="paper",
        description="where the execution function sends orders: paper (the paper venue), "
        "testnet (the exchange's sandbox) or live (real money)",
    )


class ProbeResult(_Model):
    """One scheduled probe: the verdict, what failed (``name: detail``) and every check."""

    passed: bool
    failing: list[str]
    checks: list[HealthCheck]
    checked_at: AwareDatetime


def publish_probe(slis: SliRecorder, *, passed: bool) -> None:
    """One probe's uptime sample: ``ProbeSuccess`` 1 / ``ProbeFailure`` 0, or the reverse."""
    slis.emit(
        (mn.PROBE_SUCCESS, 1.0 if passed else 0.0),
        (mn.PROBE_FAILURE, 0.0 if passed else 1.0),
    )


@dataclass(frozen=True)
class HealthService:
    probes: Sequence[HealthProbe]
    clock: Clock
    venue_mode: Literal["paper", "testnet", "live"] = "paper"

    def check(self) -> HealthResponse:
        checks = [probe.check() for probe in self.probes]
        aws_ok = all(c.status == "ok" for c in checks if c.name != EXCHANGE_CHECK)
        return HealthResponse(
            status="ok" if aws_ok else "degraded",
            checked_at=self.clock.now(),
            checks=checks,
            venue_mode=self.venue_mode,
        )

    def probe(self, slis: SliRecorder) -> ProbeResult:
        """Run the deep check and publish its uptime sample."""
        health = self.check()
        passed = health.status == "ok"
        publish_probe(slis, passed=passed)
        return ProbeResult(
            passed=passed,
            failing=[
                f"{c.name}: {c.status}: {c.detail}"
                for c in health.checks
                if c.status != "ok" and c.name != EXCHANGE_CHECK
            ],
            checks=health.checks,
            checked_at=health.checked_at,
        )
