"""Paper fill model: a market order filled against one real recorded bar, with fees, spread and
volume-dependent impact. Pure and deterministic.

A market order decided at time ``t`` fills on the first bar opening at or after ``t``:

* reference = the bar's open (the first traded price after the decision);
* half spread = the quoted half spread when a quote is known, else ``default_half_spread``
  (recorded Binance bars carry no quotes, so this is an assumption, stated in the docs);
* impact = ``impact_coefficient * sigma * sqrt(quantity / bar volume)`` — the square-root law,
  with ``sigma = (high - low) / open`` as the bar's volatility;
* fill price = reference x (1 ± (half spread + impact)), clamped into the bar's [low, high]
  (nothing trades outside the range that really traded);
* fee = fill notional x ``fee_rate`` (taker);
* an order above ``max_participation`` of the bar's volume is rejected, never partly invented.

:func:`backtest_fills` is the vectorized (polars float64) fill convention of a bar backtest —
next open x (1 ± fixed slippage) plus the same fee — used to measure the tracking error between
paper execution and the backtest over the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import polars as pl

from cryptosmarttrader.domain.types import DomainError, Money, Price, Quantity, Side

__all__ = [
    "BacktestCosts",
    "Bar",
    "Fill",
    "FillModel",
    "FillRejected",
    "backtest_fills",
    "simulate_fill",
]

PRICE_STEP: Final = Decimal("0.00000001")
MONEY_STEP: Final = Decimal("0.00000001")
BPS: Final = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Bar:
    """One real OHLCV bar (prices in quote currency, volume in base units)."""

    ts_ms: int
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Decimal

    def __post_init__(self) -> None:
        if self.ts_ms <= 0:
            raise DomainError(f"bar time must be a positive epoch ms, got {self.ts_ms}")
        if not self.volume.is_finite() or self.volume < 0:
            raise DomainError(f"bar volume must be finite and >= 0, got {self.volume}")
        lo, hi = self.low.value, self.high.value
        if (
            not lo
            <= min(self.open.value, self.close.value)
            <= max(self.open.value, self.close.value)
            <= hi
        ):
            raise DomainError(f"bar {self.ts_ms}: high/low do not bound open/close")

    @classmethod
    def of(
        cls,
        ts_ms: int,
        o: float | str,
        h: float | str,
        lo: float | str,
        c: float | str,
        v: float | str,
    ) -> Bar:
        return cls(ts_ms, Price.of(o), Price.of(h), Price.of(lo), Price.of(c), Decimal(str(v)))


@dataclass(frozen=True, slots=True)
class FillModel:
    fee_rate: Decimal = Decimal("0.001")  # Binance spot taker
    default_half_spread: Decimal = Decimal("0.0002")  # 2 bps when no quote is known
    impact_coefficient: Decimal = Decimal("0.5")
    max_participation: Decimal = Decimal("0.10")  # of the bar's volume

    def __post_init__(self) -> None:
        for name in ("fee_rate", "default_half_spread", "impact_coefficient"):
            value = getattr(self, name)
            if not value.is_finite() or value < 0 or value >= 1:
                raise DomainError(f"{name} must be in [0, 1), got {value}")
        if not Decimal(0) < self.max_participation <= Decimal(1):
            raise DomainError(f"max_participation must be in (0, 1], got {self.max_participation}")


@dataclass(frozen=True, slots=True)
class Fill:
    bar_ts_ms: int
    side: Side
    quantity: Quantity
    price: Price
    fee: Money
    reference: Price  # the bar's open
    cost_bps: Decimal  # |price - reference| / reference in bps (spread + impact)

    @property
    def notional(self) -> Decimal:
        return self.quantity.value * self.price.value


@dataclass(frozen=True, slots=True)
class FillRejected:
    bar_ts_ms: int
    reason: str


def simulate_fill(
    side: Side,
    quantity: Quantity,
    bar: Bar,
    model: FillModel,
    quoted_half_spread: Decimal | None = None,
    currency: str = "USDT",
) -> Fill | FillRejected:
    """Fill ``quantity`` at market on ``bar`` (see the module docstring for the model)."""
    if bar.volume <= 0:
        return FillRejected(bar.ts_ms, "bar has no volume: nothing traded to fill against")
    participation = quantity.value / bar.volume
    if participation > model.max_participation:
        return FillRejected(
            bar.ts_ms,
            f"order {quantity} is {participation:.2%} of the bar volume {bar.volume}, "
            f"above {model.max_participation:.0%}",
        )
    if quoted_half_spread is not None and (
        not quoted_half_spread.is_finite() or quoted_half_spread < 0
    ):
        raise DomainError(f"quoted half spread must be finite and >= 0, got {quoted_half_spread}")
    half_spread = model.default_half_spread if quoted_half_spread is None else quoted_half_spread
    ref = bar.open.value
    sigma = (bar.high.value - bar.low.value) / ref
    impact = model.impact_coefficient * sigma * participation.sqrt()
    cost = half_spread + impact
    raw = ref * (1 + cost) if side is Side.BUY else ref * (1 - cost)
    clamped = min(max(raw, bar.low.value), bar.high.value)
    price = clamped.quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN)
    fee = (quantity.value * price * model.fee_rate).quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)
    return Fill(
        bar_ts_ms=bar.ts_ms,
        side=side,
        quantity=quantity,
        price=Price(price),
        fee=Money(fee, currency),
        reference=bar.open,
        cost_bps=(abs(price - ref) / ref * BPS).quantize(Decimal("0.0001")),
    )


@dataclass(frozen=True, slots=True)
class BacktestCosts:
    """The bar backtest's cost assumption: a fixed slippage per side plus the taker fee."""

    slippage_bps: float = 5.0
    fee_rate: float = 0.001

    def __post_init__(self) -> None:
        if not 0 <= self.slippage_bps < 10_000 or not 0 <= self.fee_rate < 1:
            raise DomainError(f"invalid backtest costs {self}")


def backtest_fills(orders: pl.DataFrame, bars: pl.DataFrame, costs: BacktestCosts) -> pl.DataFrame:
    """Vectorized backtest fills: each order (``symbol, decided_ms, side, quantity``) fills at
    the open of the first bar of its symbol with ``ts >= decided_ms``, x (1 ± slippage).

    Returns the orders with ``bar_ts, fill_price, fee``; orders with no bar after them get nulls.
    """
    need_o = {"symbol", "decided_ms", "side", "quantity"}
    need_b = {"symbol", "ts", "open"}
    if not need_o <= set(orders.columns) or not need_b <= set(bars.columns):
        raise DomainError(f"orders need {sorted(need_o)}, bars need {sorted(need_b)}")
    slip = costs.slippage_bps / 10_000
    joined = orders.sort("decided_ms").join_asof(
        bars.select("symbol", "ts", "open").sort("ts"),
        left_on="decided_ms",
        right_on="ts",
        by="symbol",
        strategy="forward",
        check_sortedness=False,  # both sides are sorted by time just above
    )
    sign = pl.when(pl.col("side") == Side.BUY.value).then(1.0).otherwise(-1.0)
    return (
        joined.with_columns(
            bar_ts=pl.col("ts"),
            fill_price=pl.col("open") * (1.0 + sign * slip),
        )
        .with_columns(
            fee=pl.col("fill_price") * pl.col("quantity") * costs.fee_rate,
        )
        .drop("ts", "open")
    )
