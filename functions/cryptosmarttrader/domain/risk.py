"""RiskGuard: trading levels, per-order limits and the kill-switch gate.

Every verdict names the rule that decided it, so a rejected order always says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from enum import IntEnum

from cryptosmarttrader.domain.orders import OrderIntent
from cryptosmarttrader.domain.types import DomainError, Money, Quantity, Side


class RiskLevel(IntEnum):
    """Ordered: a higher level is always at least as restrictive."""

    NORMAL = 0
    CONSERVATIVE = 1
    DEFENSIVE = 2
    EMERGENCY = 3
    SHUTDOWN = 4


@dataclass(frozen=True, slots=True)
class LevelPolicy:
    size_multiplier: Decimal  # applied to the per-asset cap
    new_entries: bool
    description: str


LEVEL_POLICIES: dict[RiskLevel, LevelPolicy] = {
    RiskLevel.NORMAL: LevelPolicy(Decimal("1"), True, "full size, new entries allowed"),
    RiskLevel.CONSERVATIVE: LevelPolicy(Decimal("0.5"), True, "half size, new entries allowed"),
    RiskLevel.DEFENSIVE: LevelPolicy(Decimal("0"), False, "no new entries, exits only"),
    RiskLevel.EMERGENCY: LevelPolicy(Decimal("0"), False, "flatten positions, no new entries"),
    RiskLevel.SHUTDOWN: LevelPolicy(Decimal("0"), False, "nothing trades; human action to leave"),
}


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_asset_fraction: Decimal = Decimal("0.02")

    def __post_init__(self) -> None:
        if not (Decimal(0) < self.max_asset_fraction <= Decimal(1)):
            raise DomainError(
                f"max_asset_fraction must be in (0, 1], got {self.max_asset_fraction}"
            )


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    approved: bool
    rule: str  # the rule that decided: "ok" when approved
    reason: str
    quantity: Quantity | None = None  # approved (possibly reduced) quantity


QTY_STEP = Decimal("0.00000001")


def size_for_fraction(equity: Money, fraction: Decimal, price: Decimal) -> Quantity | None:
    """Largest quantity (rounded down to 1e-8) whose notional is at most ``fraction`` of equity."""
    if price <= 0:
        raise DomainError(f"price must be > 0 to size an order, got {price}")
    raw = (equity.amount * fraction / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
    return Quantity(raw) if raw > 0 else None


@dataclass(frozen=True, slots=True)
class RiskGuard:
    limits: RiskLimits = RiskLimits()

    def check(
        self,
        intent: OrderIntent,
        *,
        equity: Money | None,
        asset_exposure: Decimal,
        level: RiskLevel,
        kill_switch_on: bool,
        kill_switch_reason: str = "",
    ) -> RiskVerdict:
        """Decide whether ``intent`` may be sent. ``asset_exposure`` is the current notional held
        or pending in the same asset (quote currency)."""
        if kill_switch_on:
            return RiskVerdict(False, "kill_switch", f"kill-switch is on: {kill_switch_reason}")
        policy = LEVEL_POLICIES[level]
        reducing = intent.side is Side.SELL
        if level is RiskLevel.SHUTDOWN:
            return RiskVerdict(False, "risk_level", f"risk level SHUTDOWN: {policy.description}")
        if reducing:
            return RiskVerdict(
                True,
                "ok",
                "exit or reduction allowed at every level below SHUTDOWN",
                intent.quantity,
            )
        if not policy.new_entries:
            return RiskVerdict(
                False, "risk_level", f"risk level {level.name}: {policy.description}"
            )
        if equity is None or equity.amount <= 0:
            return RiskVerdict(False, "equity", "equity unknown or not positive: cannot size")
        if asset_exposure < 0:
            return RiskVerdict(False, "exposure", f"negative exposure {asset_exposure} is invalid")
        cap = equity.amount * self.limits.max_asset_fraction * policy.size_multiplier
        room = cap - asset_exposure
        price = intent.reference_price.value
        if room <= 0:
            return RiskVerdict(
                False,
                "max_asset_fraction",
                f"{intent.symbol} exposure {asset_exposure:.2f} already at the cap {cap:.2f} "
                f"({self.limits.max_asset_fraction:%} of equity x {policy.size_multiplier})",
            )
        notional = intent.quantity.value * price
        if notional <= room:
            return RiskVerdict(
                True, "ok", f"notional {notional:.2f} within cap {cap:.2f}", intent.quantity
            )
        reduced = (room / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
        if reduced <= 0:
            return RiskVerdict(False, "max_asset_fraction", f"no room left under cap {cap:.2f}")
        return RiskVerdict(
            True,
            "max_asset_fraction",
            f"reduced from {notional:.2f} to the remaining room {room:.2f}",
            Quantity(reduced),
        )
