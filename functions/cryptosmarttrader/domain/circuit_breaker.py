"""Circuit breaker: a pure, serializable state machine (no I/O, no clock of its own).

CLOSED → OPEN after ``failure_threshold`` consecutive failures; OPEN → HALF_OPEN once
``cooldown_seconds`` have passed (the next call is a trial); HALF_OPEN → CLOSED on success or
back to OPEN on failure. Every state carries the reason it is in, so a skipped call can say why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptosmarttrader.domain.types import DomainError, ms_from_utc, utc_from_ms

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 3
    cooldown_seconds: int = 300

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise DomainError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if self.cooldown_seconds < 0:
            raise DomainError(f"cooldown_seconds must be >= 0, got {self.cooldown_seconds}")


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Immutable breaker state; every event returns the next state."""

    config: BreakerConfig = BreakerConfig()
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: datetime | None = None
    reason: str = "no failures"

    def __post_init__(self) -> None:
        if self.consecutive_failures < 0:
            raise DomainError("consecutive_failures must be >= 0")
        if self.state is not BreakerState.CLOSED and self.opened_at is None:
            raise DomainError(f"a {self.state} breaker needs opened_at")
        if self.opened_at is not None:
            ms_from_utc(self.opened_at)  # rejects naive datetimes

    def retry_at(self) -> datetime | None:
        if self.opened_at is None or self.state is BreakerState.CLOSED:
            return None
        return self.opened_at + timedelta(seconds=self.config.cooldown_seconds)

    def allow(self, now: datetime) -> tuple[CircuitBreaker, bool]:
        """Whether a call may go ahead at ``now``, and the (possibly half-opened) new state."""
        if self.state is BreakerState.OPEN:
            retry_at = self.retry_at()
            assert retry_at is not None
            if now < retry_at:
                return self, False
            trial = replace(
                self,
                state=BreakerState.HALF_OPEN,
                reason=f"cool-down over at {retry_at.isoformat()}; trial call after: {self.reason}",
            )
            return trial, True
        return self, True

    def record_success(self) -> CircuitBreaker:
        if self.state is BreakerState.CLOSED and self.consecutive_failures == 0:
            return self
        return CircuitBreaker(config=self.config)

    def record_failure(self, now: datetime, reason: str) -> CircuitBreaker:
        failures = self.consecutive_failures + 1
        if self.state is BreakerState.HALF_OPEN:
            return replace(
                self,
                state=BreakerState.OPEN,
                consecutive_failures=failures,
                opened_at=now,
                reason=f"trial call failed: {reason}",
            )
        if self.state is BreakerState.OPEN:
            return replace(self, consecutive_failures=failures, reason=reason)
        if failures >= self.config.failure_threshold:
            return replace(
                self,
                state=BreakerState.OPEN,
                consecutive_failures=failures,
                opened_at=now,
                reason=f"{failures} consecutive failures, last: {reason}",
            )
        return replace(self, consecutive_failures=failures, reason=f"failure {failures}: {reason}")

    # ------------------------------------------------------------------ serialization

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at_ms": None if self.opened_at is None else ms_from_utc(self.opened_at),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: BreakerConfig) -> CircuitBreaker:
        """Inverse of :meth:`to_dict`; numbers may arrive as ``Decimal`` from DynamoDB."""
        try:
            opened = data.get("opened_at_ms")
            return cls(
                config=config,
                state=BreakerState(str(data["state"])),
                consecutive_failures=int(data["consecutive_failures"]),
                opened_at=None if opened is None else utc_from_ms(int(opened)),
                reason=str(data["reason"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise DomainError(f"invalid stored circuit breaker {data!r}: {exc}") from exc
