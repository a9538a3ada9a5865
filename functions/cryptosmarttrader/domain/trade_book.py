"""What a small coin really costs to trade, and a book that trades exactly the exit rule.

**Costs** (:class:`CostModel`), per side, as a fraction of the traded notional: the fee, half
the bid-ask spread (wider for thinner coins: ``spread_ref_bps * sqrt(ref_adv / adv)``, between
``spread_ref_bps`` and ``spread_max_bps``) and market impact (square-root law:
``impact_bps * sqrt(notional / adv)``), ``adv`` being the coin's 30-day average daily dollar
volume at entry. Each position is capped at ``max_adv_fraction`` of that ADV; what the cap
leaves over stays in cash.

**Book** (:func:`simulate_book`): every ``rebalance_days`` a cohort of picks is bought equal
weight with one sleeve of the equity; each position then follows the exit rule (its path and
exit come from :func:`cryptosmarttrader.domain.exit_rule.exit_outcomes`), marked daily at its
last close, and its exit proceeds wait in the sleeve as cash. Sleeves are reused only after the
longest holding period (every position is cash again on day ``max_days`` of its cohort), so
``ceil(max_days / rebalance_days)`` sleeves share the equity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cryptosmarttrader.domain.types import DomainError

__all__ = ["BookResult", "Cohort", "CostModel", "simulate_book"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CostModel:
    fee_bps: float = 10.0
    spread_ref_bps: float = 5.0  # half-spread of a coin trading ref_adv_usd a day
    ref_adv_usd: float = 100_000_000.0
    spread_max_bps: float = 300.0
    impact_bps: float = 100.0  # at a notional equal to one day's volume
    max_adv_fraction: float = 0.02  # position cap: this fraction of the 30-day ADV

    def __post_init__(self) -> None:
        if min(self.fee_bps, self.spread_ref_bps, self.impact_bps) < 0:
            raise DomainError("costs must be >= 0")
        if self.ref_adv_usd <= 0 or self.spread_max_bps < self.spread_ref_bps:
            raise DomainError("ref_adv_usd must be > 0 and spread_max_bps >= spread_ref_bps")
        if not 0 < self.max_adv_fraction <= 1:
            raise DomainError(f"max_adv_fraction must be in (0, 1], got {self.max_adv_fraction}")

    def rate(self, notional: FloatArray, adv: FloatArray) -> FloatArray:
        """One-side cost per unit of notional (NaN ADV → the widest spread)."""
        a = np.where(np.isfinite(adv) & (adv > 0), adv, np.nan)
        spread = np.clip(
            self.spread_ref_bps * np.sqrt(self.ref_adv_usd / a),
            self.spread_ref_bps,
            self.spread_max_bps,
        )
        spread = np.where(np.isfinite(spread), spread, self.spread_max_bps)
        ratio = np.where(np.isfinite(a), np.maximum(notional, 0.0) / a, 1.0)
        impact = self.impact_bps * np.sqrt(ratio)
        out: FloatArray = (self.fee_bps + spread + impact) / 10_000.0
        return out

    def cap(self, adv: FloatArray) -> FloatArray:
        """Largest position (USD) per coin: ``max_adv_fraction`` of its ADV (0 if unknown; no
        cap for an infinite ADV, which the lower-bound book uses for members it must hold at a
        total loss)."""
        out: FloatArray = np.where(adv > 0, adv * self.max_adv_fraction, 0.0)
        return np.nan_to_num(out, nan=0.0, posinf=np.inf)


@dataclass(frozen=True, slots=True)
class Cohort:
    """One rebalance's picks: their start row, each position's marked path relative to entry
    (``n × (max_days + 1)``, column 0 = 1.0 at entry, after the exit the exit value) and ADV."""

    start_row: int
    paths: FloatArray
    exit_offset: IntArray  # day the position turned to cash (0..max_days)
    adv: FloatArray
    # share of the sleeve invested (the market regime's exposure that day); the rest stays cash
    exposure: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.exposure <= 1.0:
            raise DomainError(f"cohort exposure must be in [0, 1], got {self.exposure}")


@dataclass(frozen=True, slots=True)
class BookResult:
    equity: FloatArray  # USD per day row
    turnover_usd: float
    costs_usd: float
    positions: int
    capped_positions: int  # positions cut by the ADV cap
    cash_left_by_cap_usd: float  # summed over entries


def simulate_book(
    n_days: int,
    cohorts: list[Cohort],
    *,
    rebalance_days: int,
    max_days: int,
    equity_usd: float,
    costs: CostModel,
) -> BookResult:
    """Daily equity (USD) of the sleeve book described in the module doc. A cohort with no
    pick keeps its sleeve in cash."""
    if equity_usd <= 0 or rebalance_days < 1:
        raise DomainError("equity_usd must be > 0 and rebalance_days >= 1")
    n_sleeves = math.ceil(max_days / rebalance_days)
    sleeve_cash = np.full(n_sleeves, equity_usd / n_sleeves)
    # each sleeve's value over the day rows: cash until its first cohort
    contrib = np.zeros((n_sleeves, n_days))
    active_until = np.zeros(n_sleeves, dtype=np.int64)  # row from which the sleeve is idle cash
    turnover = cost_total = cash_by_cap = 0.0
    positions = capped = 0
    for i, cohort in enumerate(sorted(cohorts, key=lambda c: c.start_row)):
        s = i % n_sleeves
        start = cohort.start_row
        if start < active_until[s]:
            raise DomainError("a sleeve was reused before its cohort had exited")
        # idle cash of this sleeve from its last cohort's end up to this start
        contrib[s, active_until[s] : start] = sleeve_cash[s]
        k = cohort.paths.shape[0]
        if k == 0:
            active_until[s] = start
            continue
        target = np.full(k, sleeve_cash[s] * cohort.exposure / k)
        cap = costs.cap(cohort.adv)
        notional = np.minimum(target, cap)
        capped += int(np.sum(notional < target - 1e-9))
        cash_by_cap += float(np.sum(target - notional))
        positions += k
        c_in = costs.rate(notional, cohort.adv)
        invested = notional * (1.0 - c_in)
        cash = sleeve_cash[s] - float(notional.sum())
        # exit cost on the exit value, charged from the exit day on
        cols = np.arange(cohort.paths.shape[1])[None, :]
        exit_value = invested * cohort.paths[np.arange(k), np.minimum(cohort.exit_offset, max_days)]
        c_out = costs.rate(exit_value, cohort.adv)
        after_exit = cols >= cohort.exit_offset[:, None]
        values = invested[:, None] * cohort.paths * np.where(after_exit, 1.0 - c_out[:, None], 1.0)
        span = min(cohort.paths.shape[1], n_days - start)
        contrib[s, start : start + span] = cash + values[:, :span].sum(axis=0)
        final = cash + float(values[:, span - 1].sum())
        turnover += float(notional.sum() + exit_value.sum())
        cost_total += float((notional * c_in).sum() + (exit_value * c_out).sum())
        sleeve_cash[s] = final
        active_until[s] = start + span - 1  # the last column is cash: the next cohort may start
    for s in range(n_sleeves):
        contrib[s, active_until[s] :] = sleeve_cash[s]
    return BookResult(
        equity=contrib.sum(axis=0),
        turnover_usd=turnover,
        costs_usd=cost_total,
        positions=positions,
        capped_positions=capped,
        cash_left_by_cap_usd=cash_by_cap,
    )
