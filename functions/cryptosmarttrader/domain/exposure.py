"""Portfolio exposure in money: notional per symbol and its correlation cluster.

Kept apart from the correlation analytics (``domain.portfolio``, numpy / polars) so the
RiskGuard and the operator's commands load without the dataframe libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from cryptosmarttrader.domain.types import DomainError

__all__ = ["PortfolioExposure"]


@dataclass(frozen=True, slots=True)
class PortfolioExposure:
    """Notional per symbol (held plus pending buys), and each symbol's correlation cluster.

    A symbol without a cluster is its own cluster. ``unknown`` names the symbols whose stored
    book could not be read (a damaged record): their notional here is a lower bound, see
    :meth:`assuming`.
    """

    by_symbol: Mapping[str, Decimal]
    clusters: Mapping[str, str] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for symbol, notional in self.by_symbol.items():
            if not notional.is_finite() or notional < 0:
                raise DomainError(f"exposure of {symbol} must be finite and >= 0, got {notional}")

    def assuming(self, per_unknown: Decimal) -> PortfolioExposure:
        """This exposure with each unknown symbol counted at ``per_unknown`` at least (the
        per-asset cap: exposure is at cost, and no entry is sized past the cap), so the gross,
        cluster and open-position limits of the other coins never take its room."""
        if not self.unknown:
            return self
        by_symbol = dict(self.by_symbol)
        for symbol in self.unknown:
            by_symbol[symbol] = max(by_symbol.get(symbol, Decimal(0)), per_unknown)
        return PortfolioExposure(by_symbol, self.clusters, self.unknown)

    @property
    def gross(self) -> Decimal:
        return sum(self.by_symbol.values(), Decimal(0))

    @property
    def open_positions(self) -> int:
        return sum(1 for v in self.by_symbol.values() if v > 0)

    def cluster_of(self, symbol: str) -> str:
        return self.clusters.get(symbol, symbol)

    def cluster_exposure(self, cluster: str) -> Decimal:
        return sum(
            (v for s, v in self.by_symbol.items() if self.cluster_of(s) == cluster), Decimal(0)
        )
