"""The strategy's exit rule, defined once: the training label, the evaluation's portfolio,
`cst backtest` and (later) the execution cycle's take-profit/stop orders all call this module.

A position opened at ``entry_price`` on day 0 is judged on the daily closes after it:

* **take profit**: a close at or above ``entry * (1 + take_profit)`` confirmed by the next
  observed close also at or above it; the exit is at that second close;
* **stop**: a close at or below ``entry * (1 - stop_loss)`` confirmed by the next observed close
  also at or below it; the exit is at that second close (one bad print neither takes profit nor
  stops a position out);
* **time limit**: otherwise the close of day ``max_days`` (the last observed close up to it);
* **prices stop**: if the series has no close after some day before the limit, the position is
  valued at its last tradable close less ``haircut`` when the series was cut (a migration, a
  broken feed: the coin trades on, its price here does not), or at −100 % when the coin stopped
  trading (``delisted``).

When take profit and stop are confirmed on the same day the stop wins (conservative).

Both entry points run the same kernel: :func:`exit_outcomes` over many windows at once (a
``rows × days`` matrix of closes, NaN where no close), :func:`exit_decision` for one position and
its bars (the execution cycle's API).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "DEFAULT_EXIT_RULE",
    "ExitDecision",
    "ExitOutcomes",
    "ExitReason",
    "ExitRule",
    "exit_decision",
    "exit_outcomes",
    "marked_paths",
    "trade_grade",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class ExitReason(StrEnum):
    TAKE_PROFIT = "take_profit"
    STOP = "stop"
    TIME = "time"
    CUT = "prices_cut"  # series cut by the quality gate: last close less the haircut
    DELISTED = "delisted"  # the coin stopped trading: -100 %
    OPEN = "open"  # still held: none of the above has happened yet


# integer codes in the vectorized kernel
_CODES: Final = (
    ExitReason.OPEN,
    ExitReason.TAKE_PROFIT,
    ExitReason.STOP,
    ExitReason.TIME,
    ExitReason.CUT,
    ExitReason.DELISTED,
)
_OPEN, _TP, _STOP, _TIME, _CUT, _DELISTED = range(6)


@dataclass(frozen=True, slots=True)
class ExitRule:
    """Levels as fractions of the entry price; days are calendar days of daily closes."""

    take_profit: float = 1.0  # +100 %
    stop_loss: float = 0.5  # -50 %
    max_days: int = 180
    confirm_closes: int = 2  # the level must hold on this many consecutive observed closes
    haircut: float = 0.3  # a cut series is valued at its last close less this fraction

    def __post_init__(self) -> None:
        if self.take_profit <= 0:
            raise DomainError(f"take_profit must be > 0, got {self.take_profit}")
        if not 0 < self.stop_loss < 1:
            raise DomainError(f"stop_loss must be in (0, 1), got {self.stop_loss}")
        if self.max_days < 1:
            raise DomainError(f"max_days must be >= 1, got {self.max_days}")
        if self.confirm_closes not in (1, 2):
            raise DomainError(f"confirm_closes must be 1 or 2, got {self.confirm_closes}")
        if not 0 <= self.haircut <= 1:
            raise DomainError(f"haircut must be in [0, 1], got {self.haircut}")

    def take_profit_price(self, entry: float) -> float:
        return entry * (1.0 + self.take_profit)

    def stop_price(self, entry: float) -> float:
        return entry * (1.0 - self.stop_loss)

    def describe(self) -> str:
        confirm = " confirmed on a second close" if self.confirm_closes == 2 else ""
        return (
            f"take profit +{self.take_profit:.0%}{confirm}, stop -{self.stop_loss:.0%}{confirm}, "
            f"exit after {self.max_days} days"
        )


DEFAULT_EXIT_RULE: Final = ExitRule()


@dataclass(frozen=True, slots=True)
class ExitOutcomes:
    """Per window: exit reason code, exit day offset (1..max_days; the last observed day for
    cuts/delistings; -1 while open) and the gross return (exit value / entry - 1)."""

    reason: IntArray
    exit_offset: IntArray
    ret: FloatArray

    def reasons(self) -> list[ExitReason]:
        return [_CODES[int(c)] for c in self.reason]

    def hit(self) -> BoolArray:
        """The trade label: the take profit was reached."""
        out: BoolArray = self.reason == _TP
        return out


def _prev_observed(values: FloatArray) -> FloatArray:
    """Per row, the previous observed (finite) value before each column (NaN if none)."""
    n_rows, n_cols = values.shape
    finite = np.isfinite(values)
    idx = np.where(finite, np.arange(n_cols)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    prev_idx = np.full_like(idx, -1)
    prev_idx[:, 1:] = idx[:, :-1]
    rows = np.arange(n_rows)[:, None]
    out = values[rows, np.maximum(prev_idx, 0)]
    return np.where(prev_idx >= 0, out, np.nan)


def _first_true(mask: BoolArray) -> IntArray:
    """Column of the first True per row; -1 where none."""
    any_true = mask.any(axis=1)
    first = np.argmax(mask, axis=1).astype(np.int64)
    return np.where(any_true, first, -1)


def exit_outcomes(
    rule: ExitRule,
    entry: FloatArray,
    forward: FloatArray,
    *,
    series_end: IntArray,
    cut: BoolArray,
) -> ExitOutcomes:
    """The exit of many positions at once.

    ``entry``: entry price per row (> 0). ``forward``: ``rows × max_days`` closes of days
    1..max_days after entry (NaN where no close). ``series_end``: per row, the offset of the last
    day the price series can be observed at all (>= max_days when it runs through the window;
    prices after it are ignored). ``cut``: per row, whether a series ending inside the window was
    cut (migration, broken feed: valued at the last close less the haircut) rather than delisted
    (-100 %). The caller passes only windows the data can judge: a window running past the
    data's own last day is not an outcome yet.
    """
    n, h = forward.shape
    if h != rule.max_days:
        raise DomainError(f"forward must have max_days={rule.max_days} columns, got {h}")
    if entry.shape != (n,) or series_end.shape != (n,) or cut.shape != (n,):
        raise DomainError("entry, series_end and cut need one value per row")
    if np.any(~(entry > 0)):
        raise DomainError("entry prices must be finite and > 0")
    offsets = np.arange(1, h + 1)
    visible = offsets[None, :] <= series_end[:, None]
    rel = np.where(visible & np.isfinite(forward) & (forward > 0), forward / entry[:, None], np.nan)
    up = rel >= 1.0 + rule.take_profit
    down = rel <= 1.0 - rule.stop_loss
    if rule.confirm_closes == 2:
        prev = _prev_observed(rel)
        up &= prev >= 1.0 + rule.take_profit
        down &= prev <= 1.0 - rule.stop_loss
    first_up, first_down = _first_true(up), _first_true(down)
    big = h + 1
    t_up = np.where(first_up >= 0, first_up, big)
    t_down = np.where(first_down >= 0, first_down, big)
    reason = np.full(n, _OPEN, dtype=np.int64)
    exit_col = np.full(n, -1, dtype=np.int64)
    stop_first = (t_down <= t_up) & (t_down < big)
    tp_first = (t_up < t_down) & (t_up < big)
    reason[stop_first], exit_col[stop_first] = _STOP, t_down[stop_first]
    reason[tp_first], exit_col[tp_first] = _TP, t_up[tp_first]
    rows = np.arange(n)
    ret = np.full(n, np.nan)
    hit = exit_col >= 0
    ret[hit] = rel[rows[hit], exit_col[hit]] - 1.0
    # last observed close inside the visible window
    observed = np.isfinite(rel)
    last_col = np.where(observed.any(axis=1), h - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
    last_rel = np.where(last_col >= 0, rel[rows, np.maximum(last_col, 0)], 1.0)
    pending = ~hit
    runs_through = series_end >= h
    timed = pending & runs_through
    reason[timed] = _TIME
    exit_col[timed] = np.where(last_col[timed] >= 0, last_col[timed], h - 1)
    ret[timed] = last_rel[timed] - 1.0
    stopped = pending & ~runs_through
    was_cut = stopped & cut
    gone = stopped & ~cut
    reason[was_cut] = _CUT
    ret[was_cut] = last_rel[was_cut] * (1.0 - rule.haircut) - 1.0
    reason[gone] = _DELISTED
    ret[gone] = -1.0
    exit_offset = exit_col + 1
    exit_offset[stopped] = np.clip(series_end[stopped], 0, h)
    return ExitOutcomes(reason, exit_offset, ret)


def marked_paths(entry: FloatArray, forward: FloatArray, outcomes: ExitOutcomes) -> FloatArray:
    """Each position's value relative to entry, ``rows × (max_days + 1)``: 1.0 at entry, then
    its last close (a missing day is marked at the previous close) until the exit, then the exit
    value (``1 + ret``) from the exit day on."""
    n, h = forward.shape
    rel = np.ones((n, h + 1))
    rel[:, 1:] = np.where(np.isfinite(forward) & (forward > 0), forward / entry[:, None], np.nan)
    idx = np.where(np.isfinite(rel), np.arange(h + 1)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    marked = rel[np.arange(n)[:, None], idx]
    cols = np.arange(h + 1)[None, :]
    after = cols >= np.where(outcomes.exit_offset >= 0, outcomes.exit_offset, h + 1)[:, None]
    out: FloatArray = np.where(after, (1.0 + outcomes.ret)[:, None], marked)
    return out


def trade_grade(outcomes: ExitOutcomes) -> IntArray:
    """Graded relevance for ranking: 3 take profit, 2 time exit with a gain, 1 time exit with
    a loss, 0 stop / delisted / cut."""
    grade = np.zeros(outcomes.reason.shape, dtype=np.int64)
    grade[outcomes.reason == _TP] = 3
    timed = outcomes.reason == _TIME
    grade[timed & (outcomes.ret > 0)] = 2
    grade[timed & ~(outcomes.ret > 0)] = 1
    return grade


@dataclass(frozen=True, slots=True)
class ExitDecision:
    """What the rule says about one open position today."""

    reason: ExitReason
    exit_price: float | None  # the close to exit at (None while open)
    days_held: int
    take_profit_price: float
    stop_price: float
    expires_after_days: int


def exit_decision(
    rule: ExitRule,
    entry_price: float,
    closes: Sequence[float | None],
    *,
    delisted: bool = False,
    cut: bool = False,
) -> ExitDecision:
    """One position: ``closes[i]`` is the daily close of day ``i + 1`` after entry (None where
    no close), up to today. Returns the exit as of the last day given, or ``OPEN`` with the
    levels to place (take-profit price, stop price, expiry). ``delisted``/``cut`` say the
    series has ended for good after the last close given."""
    if not entry_price > 0:
        raise DomainError(f"entry price must be > 0, got {entry_price}")
    days = len(closes)
    window = np.full((1, rule.max_days), np.nan)
    seen = [np.nan if c is None else float(c) for c in closes[: rule.max_days]]
    window[0, : len(seen)] = seen
    ended = delisted or cut
    end = days if ended or days < rule.max_days else rule.max_days
    out = exit_outcomes(
        rule,
        np.asarray([entry_price]),
        window,
        series_end=np.asarray([end if ended else max(end, rule.max_days)]),
        cut=np.asarray([cut]),
    )
    reason = _CODES[int(out.reason[0])]
    if reason is ExitReason.TIME and days < rule.max_days and not ended:
        reason = ExitReason.OPEN  # the limit has not come yet
    price = None if reason is ExitReason.OPEN else entry_price * (1.0 + float(out.ret[0]))
    return ExitDecision(
        reason=reason,
        exit_price=price,
        days_held=int(out.exit_offset[0]) if reason is not ExitReason.OPEN else days,
        take_profit_price=rule.take_profit_price(entry_price),
        stop_price=rule.stop_price(entry_price),
        expires_after_days=rule.max_days,
    )
