"""RiskGuard level machine: escalation, one-level-per-day de-escalation, human-only SHUTDOWN exit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptosmarttrader.domain.risk import (
    LEVEL_POLICIES,
    RiskLevel,
    RiskObservation,
    RiskState,
    RiskThresholds,
    RiskTransition,
    demanded_level,
    human_override,
    step,
)
from cryptosmarttrader.domain.types import DomainError

T0 = datetime(2022, 6, 1, 9, 0, tzinfo=UTC)


def _obs(equity: str | None, bad: str = "0", errors: int = 0) -> RiskObservation:
    return RiskObservation(None if equity is None else Decimal(equity), Decimal(bad), errors)


def _started(equity: str = "100000") -> RiskState:
    state, move = step(RiskState.initial(T0), _obs(equity), T0)
    assert move is None
    return state


@pytest.mark.parametrize(
    ("equity", "expected"),
    [
        ("97100", RiskLevel.NORMAL),  # 2.9 % daily loss
        ("97000", RiskLevel.CONSERVATIVE),  # 3 %
        ("95000", RiskLevel.DEFENSIVE),  # 5 % (below the 10 % drawdown alert)
        ("92000", RiskLevel.EMERGENCY),  # 8 %
        ("85000", RiskLevel.EMERGENCY),  # 15 % drawdown
        ("80000", RiskLevel.SHUTDOWN),  # 20 % drawdown
    ],
)
def test_daily_loss_and_drawdown_escalate_straight_to_the_demanded_level(
    equity: str, expected: RiskLevel
) -> None:
    # Given a day that started at 100,000
    state = _started()
    # When equity is observed later the same day
    new, move = step(state, _obs(equity), T0 + timedelta(hours=1))
    # Then the level is the highest one any threshold demands, with a recorded reason
    assert new.level is expected
    if expected is RiskLevel.NORMAL:
        assert move is None
    else:
        assert move is not None
        assert (move.from_level, move.to_level, move.at) == (
            RiskLevel.NORMAL,
            expected,
            T0 + timedelta(hours=1),
        )
        assert "loss" in move.reason or "drawdown" in move.reason


def test_drawdown_alert_is_measured_from_the_peak_across_days() -> None:
    # Given equity rose to 120,000 yesterday and today started at 112,000
    state = _started()
    state, _ = step(state, _obs("120000"), T0 + timedelta(hours=2))
    state, _ = step(state, _obs("112000"), T0 + timedelta(hours=14))
    # When it falls to 107,500 today (4.0 % daily loss, 10.4 % below the peak)
    new, move = step(state, _obs("107500"), T0 + timedelta(days=1, hours=1))
    # Then the drawdown alert, not the daily loss, decides: DEFENSIVE
    assert new.level is RiskLevel.DEFENSIVE
    assert move is not None and "drawdown 10.42% >= 10%" in move.reason


@pytest.mark.parametrize(
    ("obs", "expected", "word"),
    [
        (_obs("100000", bad="0.25"), RiskLevel.DEFENSIVE, "data-quality"),
        (_obs("100000", errors=3), RiskLevel.DEFENSIVE, "exchange-error"),
        (_obs("100000", errors=10), RiskLevel.EMERGENCY, "exchange-error"),
        (_obs(None), RiskLevel.DEFENSIVE, "equity unknown"),
    ],
)
def test_circuit_breakers_escalate_with_their_reason(
    obs: RiskObservation, expected: RiskLevel, word: str
) -> None:
    new, move = step(_started(), obs, T0 + timedelta(minutes=5))
    assert new.level is expected
    assert move is not None and word in move.reason


def test_emergency_and_shutdown_engage_the_kill_switch_lower_levels_do_not() -> None:
    engaged = {
        level
        for level in RiskLevel
        if RiskTransition(RiskLevel.NORMAL, level, "x", T0).engages_kill_switch
    }
    assert engaged == {RiskLevel.EMERGENCY, RiskLevel.SHUTDOWN}
    assert not LEVEL_POLICIES[RiskLevel.DEFENSIVE].new_entries


def test_de_escalation_waits_for_a_new_utc_day_and_goes_one_level_at_a_time() -> None:
    # Given DEFENSIVE after a 5 % loss at 09:00
    state, _ = step(_started(), _obs("95000"), T0)
    assert state.level is RiskLevel.DEFENSIVE
    # When equity recovers the same day, Then nothing changes
    same_day, move = step(state, _obs("100000"), T0 + timedelta(hours=14))
    assert (same_day.level, move) == (RiskLevel.DEFENSIVE, None)
    # When a new UTC day starts with metrics under every threshold, Then one level down
    day2, move = step(same_day, _obs("100000"), T0 + timedelta(hours=15, minutes=1))
    assert day2.level is RiskLevel.CONSERVATIVE
    assert move is not None and "one level down" in move.reason
    # And not a second level the same day
    day2b, move = step(day2, _obs("100000"), T0 + timedelta(hours=20))
    assert (day2b.level, move) == (RiskLevel.CONSERVATIVE, None)
    # Then NORMAL the day after
    day3, _ = step(day2b, _obs("100000"), T0 + timedelta(days=2))
    assert day3.level is RiskLevel.NORMAL


def test_shutdown_is_left_only_by_a_named_human_with_a_reason() -> None:
    # Given SHUTDOWN after a 20 % drawdown
    state, _ = step(_started(), _obs("80000"), T0)
    assert state.level is RiskLevel.SHUTDOWN
    # When days pass with good metrics, Then the machine never leaves SHUTDOWN
    for day in range(1, 5):
        state, move = step(state, _obs("100000"), T0 + timedelta(days=day))
        assert (state.level, move) == (RiskLevel.SHUTDOWN, None)
    # And an override without actor or reason is refused
    later = T0 + timedelta(days=5)
    for actor, reason in (("", "ok"), ("alice", " "), ("system:riskguard", "ok")):
        with pytest.raises(DomainError):
            human_override(state, RiskLevel.DEFENSIVE, actor, reason, later)
    # When alice releases it
    released, move = human_override(state, RiskLevel.DEFENSIVE, "alice", "post-mortem done", later)
    # Then the transition names her and the peak is reset so the old drawdown does not re-trip
    assert (released.level, move.actor, move.reason) == (
        RiskLevel.DEFENSIVE,
        "alice",
        "post-mortem done",
    )
    after, _ = step(released, _obs("100000"), later + timedelta(minutes=1))
    assert after.level is RiskLevel.DEFENSIVE


def test_state_and_transition_round_trip_through_dicts() -> None:
    state, move = step(_started(), _obs("95000"), T0 + timedelta(hours=1))
    assert move is not None
    assert RiskState.from_dict(state.to_dict()) == state
    assert RiskTransition.from_dict(move.to_dict()) == move


def test_invalid_observations_and_thresholds_are_refused() -> None:
    with pytest.raises(DomainError):
        RiskObservation(Decimal("NaN"))
    with pytest.raises(DomainError):
        RiskObservation(Decimal("-1"))
    with pytest.raises(DomainError):
        RiskObservation(Decimal("1"), Decimal("1.5"))
    with pytest.raises(DomainError):
        RiskThresholds(daily_loss_conservative=Decimal("0.06"))
    with pytest.raises(DomainError):
        step(_started(), _obs("1"), T0 - timedelta(seconds=1))


# --------------------------------------------------------------------------- properties

_equities = st.one_of(
    st.none(), st.decimals(min_value=0, max_value=200_000, places=2, allow_nan=False)
)
_observations = st.builds(
    RiskObservation,
    _equities,
    st.decimals(min_value=0, max_value=1, places=2),
    st.integers(min_value=0, max_value=15),
)
_steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=36 * 3600), _observations),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_property_level_moves_only_by_its_rules(moves: list[tuple[int, RiskObservation]]) -> None:
    state = RiskState.initial(T0)
    now = T0
    thresholds = RiskThresholds()
    for gap_s, obs in moves:
        now = now + timedelta(seconds=gap_s)
        before = state
        state, move = step(state, obs, now, thresholds)
        if move is None:
            assert state.level is before.level
            continue
        assert (move.from_level, move.to_level, move.at) == (before.level, state.level, now)
        if state.level < before.level:
            # a decrease: never from SHUTDOWN, exactly one level, only on a later UTC day,
            # and only when the metrics demand less than the old level
            assert before.level is not RiskLevel.SHUTDOWN
            assert state.level == before.level - 1
            assert now.date() > before.since.date()
            demanded, _ = demanded_level(state, obs, thresholds)
            assert demanded < before.level
        else:
            demanded, reasons = demanded_level(state, obs, thresholds)
            assert state.level == demanded and reasons


@settings(max_examples=200, deadline=None)
@given(_steps)
def test_property_shutdown_is_absorbing_without_a_human(
    moves: list[tuple[int, RiskObservation]],
) -> None:
    state = RiskState(RiskLevel.SHUTDOWN, T0, "drill")
    now = T0
    for gap_s, obs in moves:
        now = now + timedelta(seconds=gap_s)
        state, move = step(state, obs, now)
        assert state.level is RiskLevel.SHUTDOWN
        assert move is None
