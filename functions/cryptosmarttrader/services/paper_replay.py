"""Backtest through the paper execution path: the deployed pipeline replayed on past days.

Where ``services.evaluate.backtest`` is vectorized (weights on daily closes, a flat cost rate),
this replay drives the very objects the Lambdas run, on one embedded local AWS: on each decision
day ``d`` the scan decides as of ``d`` at ``d`` 00:15 (BUYs, and CLOSEs of what it no longer
selects), then the execution cycle runs at ``d`` 01:10 (the RiskGuard re-decides, orders go to
the paper venue) and 02:10 (fills on the 02:00 bar's real prices, positions, equity, risk
level). The account's equity after each decision day's fills is the replay's curve. Between
decision days nothing trades and the RiskGuard is not consulted: this is a replay of decisions,
not of every hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cryptosmarttrader.domain.clock import Clock, FixedClock
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.ports import Progress
from cryptosmarttrader.services.progress import no_progress
from cryptosmarttrader.services.scan import ScanService
from cryptosmarttrader.services.trading_cycle import TradingCycle

__all__ = ["CYCLE_OFFSETS", "PaperReplay", "ReplayDay"]

PAPER_STEP = "paper replay days"  # progress step (services/progress.py)
SCAN_OFFSET = timedelta(minutes=15)
CYCLE_OFFSETS = (timedelta(hours=1, minutes=10), timedelta(hours=2, minutes=10))


@dataclass(frozen=True)
class ReplayDay:
    asof: date
    decided: int  # NEW orders the scan recorded (BUYs and CLOSEs)
    filled: int  # orders filled by that day's cycles
    equity: float | None
    risk_level: str
    positions: dict[str, float]


@dataclass
class PaperReplay:
    scan_for: Callable[[Clock], ScanService]
    cycle_for: Callable[[Clock], TradingCycle]
    days: list[ReplayDay] = field(default_factory=list)

    def run(
        self, start: date, end: date, every_days: int, progress: Progress = no_progress
    ) -> list[ReplayDay]:
        if end < start or every_days < 1:
            raise ValueError(f"need start <= end and every_days >= 1, got {start}..{end}")
        total = (end - start).days // every_days + 1
        for done in range(total):
            progress(PAPER_STEP, done, total)
            self.days.append(self._decide_and_execute(start + timedelta(days=done * every_days)))
        progress(PAPER_STEP, total, total)
        return self.days

    def _decide_and_execute(self, day: date) -> ReplayDay:
        asof = datetime(day.year, day.month, day.day, tzinfo=UTC)
        report = self.scan_for(FixedClock(asof + SCAN_OFFSET)).run(asof)
        cycles = [self.cycle_for(FixedClock(asof + offset)) for offset in CYCLE_OFFSETS]
        reports = [cycle.run() for cycle in cycles]
        until = asof + CYCLE_OFFSETS[-1]
        filled = sum(
            1
            for o in cycles[-1].execution.orders.all_orders()
            if o.status is OrderStatus.FILLED
            and o.facts.filled_at is not None
            and asof < o.facts.filled_at <= until
        )
        last = reports[-1]
        return ReplayDay(
            asof=day,
            decided=report.orders_created,
            filled=filled,
            equity=last.equity,
            risk_level=last.risk_level,
            positions=last.positions,
        )
