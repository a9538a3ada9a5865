"""Value types for the trading domain.

Money, prices and quantities are ``Decimal`` wrapped in frozen value types so that a price can
never be passed where a quantity is expected and a NaN, zero or negative value fails fast at the
boundary (nautilus_trader style). Analytics use numpy / polars float64 instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Self


class DomainError(ValueError):
    """Raised when a value violates a domain invariant. The message says which and why."""


def _to_decimal(value: Decimal | int | str | float, what: str) -> Decimal:
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(f"{what} is not a number: {value!r}") from exc
    if not dec.is_finite():
        raise DomainError(f"{what} must be finite, got {value!r}")
    return dec


@dataclass(frozen=True, slots=True)
class Price:
    """A strictly positive, finite price in quote currency."""

    value: Decimal

    def __post_init__(self) -> None:
        dec = _to_decimal(self.value, "price")
        if dec <= 0:
            raise DomainError(f"price must be > 0, got {self.value!r}")
        object.__setattr__(self, "value", dec)

    @classmethod
    def of(cls, value: Decimal | int | str | float) -> Self:
        return cls(_to_decimal(value, "price"))

    def __str__(self) -> str:
        return format(self.value, "f")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A strictly positive, finite amount of the base asset."""

    value: Decimal

    def __post_init__(self) -> None:
        dec = _to_decimal(self.value, "quantity")
        if dec <= 0:
            raise DomainError(f"quantity must be > 0, got {self.value!r}")
        object.__setattr__(self, "value", dec)

    @classmethod
    def of(cls, value: Decimal | int | str | float) -> Self:
        return cls(_to_decimal(value, "quantity"))

    def __str__(self) -> str:
        return format(self.value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class Money:
    """A finite amount in a currency (may be zero or negative: PnL, cash flows)."""

    amount: Decimal
    currency: str = "USD"

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _to_decimal(self.amount, "money amount"))
        if not self.currency or not self.currency.isalnum():
            raise DomainError(f"invalid currency code: {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * Decimal(factor), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise DomainError(f"currency mismatch: {self.currency} vs {other.currency}")


_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Symbol:
    """An instrument identifier: a CoinGecko coin id (``bitcoin``) or an exchange pair (``BTC/USDT``).

    Pairs are ``BASE/QUOTE``; coin ids are lowercase slugs.
    """

    value: str

    def __post_init__(self) -> None:
        parts = self.value.split("/")
        if len(parts) > 2 or not all(_SYMBOL_RE.match(p) for p in parts):
            raise DomainError(f"invalid symbol: {self.value!r}")

    @property
    def is_pair(self) -> bool:
        return "/" in self.value

    def __str__(self) -> str:
        return self.value


_CLIENT_ID_RE = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """Deterministic client order ID: lowercase hex of a SHA256 digest, shortened per venue."""

    value: str

    def __post_init__(self) -> None:
        if not _CLIENT_ID_RE.match(self.value):
            raise DomainError(f"client order id must be 8-64 lowercase hex chars: {self.value!r}")

    def shortened(self, max_len: int) -> ClientOrderId:
        if max_len < 8:
            raise DomainError(f"venue client-id limit too small: {max_len}")
        return ClientOrderId(self.value[:max_len])

    def __str__(self) -> str:
        return self.value


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    # a sell resting on the venue until its trigger (stop) price trades, then a limit order:
    # the protective stop of a held position (Binance spot ``STOP_LOSS_LIMIT``)
    STOP_LOSS_LIMIT = "stop_loss_limit"
    # a limit sell that only rests (refused rather than taking liquidity): the take-profit leg of
    # a protective OCO order list (Binance spot ``LIMIT_MAKER``)
    LIMIT_MAKER = "limit_maker"


class Action(StrEnum):
    """What the system decided for a symbol at a bar."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"
    ABSTAIN = "abstain"


def utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_from_utc(ts: datetime) -> int:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise DomainError(f"timestamp must be timezone-aware UTC, got naive {ts!r}")
    return int(ts.timestamp() * 1000)
