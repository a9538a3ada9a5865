"""Balance reconciliation: the venue account against the positions ledger, every cycle.

Pure: the caller reads the venue's balances (totals: free + locked in open orders) and the
ledger, this module says where they disagree. The ledger is what the product believes it holds;
the venue is what the account really holds. Two different disagreements:

* **drift**: the venue holds *less* than the ledger (of a coin, or of cash) beyond the
  tolerance. Something the product did not do took it (a manual sale, a withdrawal, a fill the
  ledger missed): the RiskGuard moves to DEFENSIVE and an alarm is raised, because every later
  decision would size and sell from a wrong book;
* **external**: the venue holds *more* of a coin than the ledger (a position opened outside the
  system, a deposit, dust). It is reported and never traded against: the ledger, not the
  account, decides what the product may sell.

An asset with an order in flight (submitted, partly filled) is not judged this cycle: its fill
can land between the ledger read and the balance read. Nor is an asset whose balance the venue
did not state, or one the venue takes commissions in (Binance's BNB, KuCoin's KCS when the
account pays fees with them): its balance falls with every trade of any coin, which the ledger's
position in it does not follow. Surplus cash is neither: an account may hold more than the
product's capital.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "COMMISSION_ASSETS",
    "AssetBalance",
    "BalanceCheck",
    "BalanceTolerance",
    "Disagreement",
    "reconcile_balances",
]


# Assets a venue can take its commissions in instead of the asset received (account options
# "pay fees with BNB" / "pay fees with KCS"): their balances are not judged against the ledger.
COMMISSION_ASSETS: Final[dict[str, frozenset[str]]] = {
    "binance": frozenset({"BNB"}),
    "kucoin": frozenset({"KCS"}),
    "kraken": frozenset(),
}


@dataclass(frozen=True, slots=True)
class BalanceTolerance:
    """How far the venue may be from the ledger before it counts: ``relative`` of the ledger's
    amount (rounding, commissions in the asset) or, whichever is larger, an amount worth
    ``dust_value`` in the quote currency at the mark."""

    relative: Decimal = Decimal("0.005")
    dust_value: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        for name in ("relative", "dust_value"):
            value = getattr(self, name)
            if not value.is_finite() or value < 0:
                raise DomainError(f"balance tolerance {name} must be finite and >= 0: {value}")

    def allowed(self, ledger: Decimal, mark: Decimal | None) -> Decimal:
        """The absolute difference of an asset tolerated around ``ledger``."""
        dust = Decimal(0) if mark is None or mark <= 0 else self.dust_value / mark
        return max(self.relative * abs(ledger), dust)


class Disagreement(StrEnum):
    DRIFT = "drift"  # the venue holds less than the ledger
    EXTERNAL = "external"  # the venue holds more of a coin than the ledger


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset where the venue and the ledger disagree beyond the tolerance."""

    asset: str
    ledger: Decimal
    venue: Decimal
    kind: Disagreement
    value: Decimal | None  # |venue - ledger| in the quote currency; None without a mark

    @property
    def difference(self) -> Decimal:
        return self.venue - self.ledger

    def describe(self) -> str:
        worth = "" if self.value is None else f" (worth {self.value:.2f})"
        if self.kind is Disagreement.DRIFT:
            return (
                f"{self.asset}: the venue holds {self.venue.normalize():f}, the ledger "
                f"{self.ledger.normalize():f}; {(-self.difference).normalize():f} missing{worth}"
            )
        return (
            f"{self.asset}: {self.difference.normalize():f} on the venue beyond the ledger's "
            f"{self.ledger.normalize():f}{worth}; held outside the system, never traded"
        )


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """What one reconciliation found (``checked``: assets judged; ``skipped``: in flight)."""

    disagreements: tuple[AssetBalance, ...]
    checked: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def drifts(self) -> tuple[AssetBalance, ...]:
        return tuple(d for d in self.disagreements if d.kind is Disagreement.DRIFT)

    @property
    def external(self) -> tuple[AssetBalance, ...]:
        return tuple(d for d in self.disagreements if d.kind is Disagreement.EXTERNAL)

    @property
    def drift_reason(self) -> str | None:
        """Why the RiskGuard must go DEFENSIVE, or ``None`` when the books agree."""
        drifts = self.drifts
        if not drifts:
            return None
        return "balance drift: " + "; ".join(d.describe() for d in drifts)


def _amount(value: Decimal, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise DomainError(f"{what} must be a finite amount >= 0, got {value!r}")
    return value


def reconcile_balances(
    venue: Mapping[str, Decimal | None],
    ledger: Mapping[str, Decimal],
    *,
    quote: str,
    marks: Mapping[str, Decimal],
    ledger_cash: Decimal | None,
    in_flight: Collection[str] = (),
    commission_assets: Collection[str] = (),
    tolerance: BalanceTolerance | None = None,
    unknown: Collection[str] = (),
) -> BalanceCheck:
    """Compare the venue's balance totals with the ledger (coin quantities and cash).

    ``venue``: asset → total on the account (free + locked; ``None``: the venue did not state
    it, not judged). ``ledger``: base asset → quantity
    the positions table holds. ``marks``: base asset → price in ``quote`` (for the dust
    threshold and the value of a difference). ``ledger_cash``: the product's cash in ``quote``
    (``None``: not tracked, not checked). ``in_flight``: assets with an open order (the quote
    included while any order is open): not judged this cycle. ``commission_assets``: assets
    the venue may take commissions in, never judged. ``unknown``: assets whose ledger amount
    cannot be read (a damaged position record): not judged, neither drift nor external.
    """
    tol = tolerance or BalanceTolerance()
    held = {a: _amount(q, f"ledger quantity of {a}") for a, q in ledger.items() if q != 0}
    account = {a: _amount(q, f"venue balance of {a}") for a, q in venue.items() if q is not None}
    unstated = {a for a, q in venue.items() if q is None}
    skipped = set(in_flight) | unstated | (set(held) & set(commission_assets)) | set(unknown)
    found: list[AssetBalance] = []
    checked: list[str] = []
    for asset in sorted((set(held) | set(account)) - {quote}):
        if asset in skipped:
            continue
        checked.append(asset)
        mine, theirs = held.get(asset, Decimal(0)), account.get(asset, Decimal(0))
        mark = marks.get(asset)
        diff = theirs - mine
        if abs(diff) <= tol.allowed(mine, mark):
            continue
        value = None if mark is None else abs(diff) * mark
        if diff < 0:
            found.append(AssetBalance(asset, mine, theirs, Disagreement.DRIFT, value))
        elif mark is not None or mine > 0:
            # a coin without a mark and not in the ledger is dust of unknown worth: reported
            # only when it can be valued, or when it tops up a position the ledger holds
            found.append(AssetBalance(asset, mine, theirs, Disagreement.EXTERNAL, value))
    if ledger_cash is not None and not set(in_flight) and quote not in unstated:
        checked.append(quote)
        cash = _amount(ledger_cash, "ledger cash")
        have = account.get(quote, Decimal(0))
        if cash - have > tol.allowed(cash, Decimal(1)):
            found.append(AssetBalance(quote, cash, have, Disagreement.DRIFT, cash - have))
    return BalanceCheck(tuple(found), tuple(checked), tuple(sorted(skipped)))
