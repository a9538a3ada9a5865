"""Venue modes and the rules of a real venue's order book: sizing, testnets, the live gate.

Pure: no I/O and no ccxt. ``paper`` fills on recorded bars inside the product; ``testnet`` sends
real orders to an exchange's sandbox (ccxt ``set_sandbox_mode``); ``live`` sends real orders with
real money, and only after the go-live machine has passed staging and canary for the stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any, Final

from cryptosmarttrader.domain.exchange import ExchangeId, Market
from cryptosmarttrader.domain.types import DomainError, Price, Quantity, Side

__all__ = [
    "TESTNETS",
    "LiveGate",
    "SizedOrder",
    "SizingRefusal",
    "VenueMode",
    "dust_reason",
    "live_gate",
    "sandbox_support",
    "size_order",
]


class VenueMode(StrEnum):
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Testnet:
    """Whether ccxt can point a venue's spot API at a sandbox, and where or why not."""

    available: bool
    note: str


# What ccxt 4.5 offers per venue (``exchange.urls["test"]``), checked against the exchanges'
# own announcements: KuCoin retired its sandbox in 2023 and ccxt removed the URL (ccxt PR
# #19701); Kraken has never offered a spot sandbox (its demo environment is futures only).
TESTNETS: Final[dict[ExchangeId, Testnet]] = {
    ExchangeId.BINANCE: Testnet(True, "Binance spot testnet, https://testnet.binance.vision"),
    ExchangeId.KUCOIN: Testnet(
        False, "KuCoin retired its sandbox in 2023; ccxt has no sandbox URL for kucoin"
    ),
    ExchangeId.KRAKEN: Testnet(
        False, "Kraken offers no spot sandbox (its demo environment is Kraken Futures only)"
    ),
}


def sandbox_support(exchange_id: ExchangeId | str) -> Testnet:
    try:
        return TESTNETS[ExchangeId(exchange_id)]
    except ValueError as exc:
        raise DomainError(f"unsupported exchange: {exchange_id!r}") from exc


# --------------------------------------------------------------------------------------------
# Sizing: precision, lot size and minimum notional, always rounding down
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """What may be sent: the amount on the venue's step (never above the asked amount) and the
    limit price on its tick (``None`` for a market order)."""

    quantity: Quantity
    price: Price | None
    notional: Decimal


@dataclass(frozen=True, slots=True)
class SizingRefusal:
    """Why nothing may be sent (the order is refused, never inflated to the venue's minimum)."""

    reason: str


def _floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _ceil_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def size_order(
    market: Market,
    side: Side,
    quantity: Quantity,
    *,
    limit_price: Price | None,
    reference_price: Price,
) -> SizedOrder | SizingRefusal:
    """The order the venue will take for ``quantity`` of ``market``, or why there is none.

    The amount is rounded DOWN to the amount step; a limit price is rounded to the tick in the
    trader's favour (a buy never pays more, a sell never takes less than asked). The minimum
    amount and the minimum notional (at the limit price, else at ``reference_price``, the
    venue's last traded price for a market order) are checked after rounding: an order below
    them is refused with the numbers, never rounded up.
    """
    symbol = market.symbol.value
    if not market.active:
        return SizingRefusal(f"{symbol} is not active on {market.exchange}")
    if not market.spot:
        return SizingRefusal(f"{symbol} is not a spot market on {market.exchange}")
    amount = quantity.value
    step = market.amount_step
    if step is not None and step > 0:
        amount = _floor_to(amount, step)
    if amount <= 0:
        return SizingRefusal(
            f"{symbol}: {quantity} rounds down to 0 on the amount step {step} of {market.exchange}"
        )
    price = limit_price
    tick = market.price_tick
    if price is not None and tick is not None and tick > 0:
        rounded = _floor_to(price.value, tick) if side is Side.BUY else _ceil_to(price.value, tick)
        if rounded <= 0:
            return SizingRefusal(f"{symbol}: limit price {price} rounds to 0 on tick {tick}")
        price = Price(rounded)
    if market.min_amount is not None and amount < market.min_amount:
        return SizingRefusal(
            f"{symbol}: amount {amount.normalize():f} (asked {quantity}) is below the minimum "
            f"amount {market.min_amount.normalize():f} of {market.exchange}; not inflated"
        )
    at = (price or reference_price).value
    notional = amount * at
    if market.min_cost is not None and notional < market.min_cost:
        return SizingRefusal(
            f"{symbol}: notional {notional.normalize():f} ({amount.normalize():f} at "
            f"{at.normalize():f}) is below the minimum notional "
            f"{market.min_cost.normalize():f} of {market.exchange}; not inflated"
        )
    return SizedOrder(Quantity(amount), price, notional)


def dust_reason(market: Market, quantity: Decimal, price: Decimal) -> str | None:
    """Why a holding of ``quantity`` is dust on ``market``: no sell of it can be placed (floored
    to the amount step it is 0, or below the minimum amount, or below the minimum notional at
    ``price``), else None. A close leaves such a remainder when a buy's commission was taken in
    the asset bought: the position is closed for trading (selling it would only be refused)."""
    if quantity <= 0:
        return None
    amount, step = quantity, market.amount_step
    if step is not None and step > 0:
        amount = _floor_to(quantity, step)
        if amount <= 0:
            return f"it rounds down to 0 on the amount step {step.normalize():f}"
    if market.min_amount is not None and amount < market.min_amount:
        return f"below the minimum amount {market.min_amount.normalize():f}"
    if market.min_cost is not None and amount * price < market.min_cost:
        return f"below the minimum notional {market.min_cost.normalize():f}"
    return None


# --------------------------------------------------------------------------------------------
# The live gate: real money only after staging and canary passed for this stack
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveGate:
    allowed: bool
    reason: str


def live_gate(
    run_id: str | None,
    run: Mapping[str, Any] | None,
    transitions: Sequence[Mapping[str, Any]],
    active: Mapping[str, Any] | None,
) -> LiveGate:
    """Whether a stack may trade ``live``: the go-live run it was deployed with (``run_id``)
    exists, went staging → canary → production (each gate passed, in that order), is
    SUCCEEDED and not rolled back, and is still the run trading is active under."""
    if not run_id:
        return LiveGate(
            False,
            "live needs the id of a go-live run that passed staging and canary for this stack "
            "(CDK context cst:live_golive_run); none was given",
        )
    if run is None:
        return LiveGate(False, f"go-live run {run_id} is not recorded on this stack")
    status, stage = str(run.get("status")), str(run.get("stage"))
    if status != "SUCCEEDED" or stage != "production":
        return LiveGate(
            False,
            f"go-live run {run_id} has not passed staging and canary "
            f"(status {status}, stage {stage})",
        )
    moves = sorted(
        ((str(t.get("at")), str(t.get("from_stage")), str(t.get("to_stage"))) for t in transitions),
    )
    path = [to for _, _, to in moves]
    if "rolled_back" in path:
        return LiveGate(False, f"go-live run {run_id} was rolled back")
    if path[-3:] != ["staging", "canary", "production"] or len(path) != 3:
        return LiveGate(
            False,
            f"go-live run {run_id} did not go staging → canary → production (it went {path})",
        )
    if active is None or str(active.get("run_id")) != run_id or active.get("stage") != "production":
        return LiveGate(
            False,
            f"go-live run {run_id} is not the active production run "
            f"(active: {None if active is None else active.get('run_id')})",
        )
    return LiveGate(True, f"go-live run {run_id} passed staging and canary")
