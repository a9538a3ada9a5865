"""Circuit breaker state machine: closed → open → half-open → closed, and back to open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.circuit_breaker import BreakerConfig, BreakerState, CircuitBreaker
from cryptosmarttrader.domain.types import DomainError

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CFG = BreakerConfig(failure_threshold=3, cooldown_seconds=60)


def _failed(times: int, breaker: CircuitBreaker | None = None) -> CircuitBreaker:
    b = breaker or CircuitBreaker(CFG)
    for i in range(times):
        b = b.record_failure(T0, f"timeout {i}")
    return b


def test_stays_closed_below_the_threshold() -> None:
    b = _failed(2)
    assert b.state is BreakerState.CLOSED
    assert b.consecutive_failures == 2
    assert b.allow(T0) == (b, True)


def test_opens_after_n_consecutive_failures_and_refuses_calls() -> None:
    # Given three consecutive failures
    b = _failed(3)
    # Then it is open with the reason, and refuses calls until the cool-down is over
    assert b.state is BreakerState.OPEN
    assert "3 consecutive failures, last: timeout 2" in b.reason
    assert b.allow(T0 + timedelta(seconds=59)) == (b, False)


def test_a_success_resets_the_failure_count() -> None:
    b = _failed(2).record_success()
    assert b == CircuitBreaker(CFG)
    assert _failed(2, b).state is BreakerState.CLOSED


def test_half_opens_after_cool_down_and_closes_on_success() -> None:
    # Given an open breaker whose cool-down has passed
    b, allowed = _failed(3).allow(T0 + timedelta(seconds=60))
    # Then one trial call is allowed
    assert allowed
    assert b.state is BreakerState.HALF_OPEN
    # When the trial succeeds, Then it closes
    closed = b.record_success()
    assert closed.state is BreakerState.CLOSED
    assert closed.consecutive_failures == 0


def test_failed_trial_reopens_with_a_fresh_cool_down() -> None:
    later = T0 + timedelta(seconds=61)
    half, _ = _failed(3).allow(later)
    reopened = half.record_failure(later, "still down")
    assert reopened.state is BreakerState.OPEN
    assert reopened.opened_at == later
    assert reopened.reason == "trial call failed: still down"
    assert reopened.allow(later + timedelta(seconds=59))[1] is False
    assert reopened.allow(later + timedelta(seconds=60))[1] is True


def test_round_trips_through_its_stored_form_including_dynamodb_decimals() -> None:
    b = _failed(3)
    stored = {k: (Decimal(v) if isinstance(v, int) else v) for k, v in b.to_dict().items()}
    assert CircuitBreaker.from_dict(stored, CFG) == b


def test_invalid_stored_state_is_rejected_with_the_data() -> None:
    with pytest.raises(DomainError, match="invalid stored circuit breaker"):
        CircuitBreaker.from_dict({"state": "melted"}, CFG)


def test_config_and_state_invariants() -> None:
    with pytest.raises(DomainError):
        BreakerConfig(failure_threshold=0)
    with pytest.raises(DomainError, match="needs opened_at"):
        CircuitBreaker(CFG, state=BreakerState.OPEN)
    with pytest.raises(DomainError, match="naive"):
        CircuitBreaker(CFG, state=BreakerState.OPEN, opened_at=datetime(2024, 1, 1))  # noqa: DTZ001
