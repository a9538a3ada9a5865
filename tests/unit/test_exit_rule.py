"""The strategy's exit rule on tiny hand-made paths with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptosmarttrader.domain.exit_rule import (
    ExitReason,
    ExitRule,
    exit_decision,
    exit_outcomes,
    marked_paths,
    trade_grade,
)
from cryptosmarttrader.domain.types import DomainError

RULE = ExitRule(take_profit=1.0, stop_loss=0.5, max_days=5, haircut=0.3)
NAN = math.nan


def _run(
    paths: list[list[float]], series_end: list[int] | None = None, cut: list[bool] | None = None
):
    fwd = np.asarray(paths, dtype=np.float64)
    n = fwd.shape[0]
    return exit_outcomes(
        RULE,
        np.ones(n),
        fwd,
        series_end=np.asarray(series_end or [6] * n, dtype=np.int64),
        cut=np.asarray(cut or [False] * n),
    )


def test_take_profit_needs_a_second_close_at_the_level() -> None:
    # Given a one-day spike to x2.5 that falls back, and a move to x2 held for two closes
    out = _run([[2.5, 1.1, 1.2, 1.3, 1.4], [1.5, 2.0, 2.1, 1.0, 1.0]])
    # Then the spike is no take profit (time exit at the last close); the held move exits on
    # its second close at the second close's price
    assert out.reasons() == [ExitReason.TIME, ExitReason.TAKE_PROFIT]
    assert out.exit_offset.tolist() == [5, 3]
    assert out.ret.tolist() == pytest.approx([0.4, 1.1])
    assert out.hit().tolist() == [False, True]


def test_stop_is_confirmed_on_two_closes_and_wins_a_tie() -> None:
    # Given a fall to -60 % held two days, and a path where both levels confirm... never on
    # the same day in practice, so a gap: close 2.2, gap, 0.4, 0.4
    out = _run([[0.9, 0.4, 0.45, 3.0, 3.0], [0.4, 1.0, 0.4, 0.4, 1.0]])
    assert out.reasons() == [ExitReason.STOP, ExitReason.STOP]
    assert out.exit_offset.tolist() == [3, 4]
    assert out.ret.tolist() == pytest.approx([-0.55, -0.6])


def test_confirmation_skips_missing_days() -> None:
    # Given x2.2, a missing day, then x2.3: the next observed close confirms
    out = _run([[1.0, 2.2, NAN, 2.3, 1.0]])
    assert out.reasons() == [ExitReason.TAKE_PROFIT]
    assert out.exit_offset.tolist() == [4]


def test_a_delisted_coin_is_a_miss_valued_at_minus_100_percent() -> None:
    # Given a series whose last close is day 2 (the coin stopped trading)
    out = _run([[1.5, 1.8, NAN, NAN, NAN]], series_end=[2], cut=[False])
    assert out.reasons() == [ExitReason.DELISTED]
    assert out.ret.tolist() == [-1.0]
    assert out.hit().tolist() == [False]
    assert trade_grade(out).tolist() == [0]


def test_a_cut_series_is_valued_at_its_last_close_less_the_haircut() -> None:
    # Given a token swap on day 3: prices from day 3 on belong to another series
    out = _run([[1.5, 1.8, 20.0, 21.0, 22.0]], series_end=[2], cut=[True])
    assert out.reasons() == [ExitReason.CUT]
    assert out.ret[0] == pytest.approx(1.8 * 0.7 - 1.0)
    assert out.exit_offset.tolist() == [2]


def test_grades_order_take_profit_gain_loss_stop() -> None:
    out = _run([[2.0, 2.0, 1, 1, 1], [1.1, 1.1, 1.1, 1.1, 1.2], [0.9] * 5, [0.4] * 5])
    assert trade_grade(out).tolist() == [3, 2, 1, 0]


def test_marked_paths_hold_the_last_close_then_the_exit_value() -> None:
    fwd = np.asarray([[1.5, NAN, 2.1, 2.2, 9.0]])
    out = _run(fwd.tolist())
    paths = marked_paths(np.ones(1), fwd, out)
    assert paths[0].tolist() == pytest.approx([1.0, 1.5, 1.5, 2.1, 2.2, 2.2])


def test_the_cycle_api_gives_levels_and_the_same_decision_as_the_kernel() -> None:
    # Given an open position two days in
    open_now = exit_decision(RULE, 10.0, [12.0, None])
    assert open_now.reason is ExitReason.OPEN and open_now.exit_price is None
    assert (open_now.take_profit_price, open_now.stop_price) == (20.0, 5.0)
    # When the second close at the level arrives, it exits there
    done = exit_decision(RULE, 10.0, [12.0, 21.0, 22.0])
    assert done.reason is ExitReason.TAKE_PROFIT and done.exit_price == pytest.approx(22.0)
    assert done.days_held == 3
    # After the limit without a level: a time exit at the last close
    timed = exit_decision(RULE, 10.0, [11.0, 12.0, 13.0, 12.0, 11.5])
    assert timed.reason is ExitReason.TIME and timed.exit_price == pytest.approx(11.5)
    # A delisting: -100 %
    gone = exit_decision(RULE, 10.0, [11.0], delisted=True)
    assert gone.reason is ExitReason.DELISTED and gone.exit_price == 0.0


def test_bad_rules_and_inputs_are_refused() -> None:
    with pytest.raises(DomainError):
        ExitRule(stop_loss=1.0)
    with pytest.raises(DomainError):
        exit_decision(RULE, 0.0, [1.0])
    with pytest.raises(DomainError):
        exit_outcomes(
            RULE,
            np.ones(1),
            np.ones((1, 4)),
            series_end=np.ones(1, np.int64),
            cut=np.zeros(1, bool),
        )
