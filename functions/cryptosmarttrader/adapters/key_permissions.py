"""What an exchange API key may do, asked of the venue before the key is used.

Binance answers it on ``GET /sapi/v1/account/apiRestrictions`` (SIGNED, request weight 1; ccxt's
implicit ``sapi_get_account_apirestrictions``): ``ipRestrict``, ``enableWithdrawals``,
``enableInternalTransfer``, ``permitsUniversalTransfer``, ``enableSpotAndMarginTrading``,
``enableReading``, ``enableFutures``, ``enableMargin``, ``enableVanillaOptions``,
``tradingAuthorityExpirationTime`` and ``createTime``.

* a TRADING key (the execution function's) is refused when it can withdraw or move funds
  (withdrawals, internal transfers, universal transfers enabled) or cannot trade spot;
* a READ-ONLY key (the ingest function's) is refused when it can do anything but read: spot,
  margin, futures or options trading, withdrawals or transfers.

The answer is cached per key for a bounded time (:class:`KeyPermissionChecks`), keyed on a
key id (a SHA-256 digest prefix of the API key, never the key): a rotated key is a new id and
is asked again. A refusal is one line naming what the key may do, never the key.

Binance's spot testnet serves no ``/sapi`` endpoint (ccxt's sandbox URLs have no ``sapi``
family): there the check is skipped with a stated note (:func:`unchecked_note`); on the live
venue it is required, and an unreadable answer is a refusal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.sanitize import sanitize_text

__all__ = [
    "DEFAULT_CHECK_MAX_AGE",
    "ApiRestrictions",
    "KeyPermissionChecks",
    "KeyPurpose",
    "KeyRefusedError",
    "key_id",
    "read_only_refusal",
    "trading_refusal",
    "unchecked_note",
]

DEFAULT_CHECK_MAX_AGE: Final = timedelta(minutes=10)
ENDPOINT: Final = "GET /sapi/v1/account/apiRestrictions"


class KeyPurpose(StrEnum):
    TRADING = "trading"
    READ_ONLY = "read-only"


class KeyRefusedError(RuntimeError):
    """The key may do more (or less) than its purpose allows, or its permissions could not be
    read; the message says which, never the key."""


class ApiRestrictions(BaseModel):
    """Binance's answer. The flags the decision rests on are required: an answer without them
    is not understood, and refused."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    ip_restrict: bool = Field(alias="ipRestrict")
    enable_withdrawals: bool = Field(alias="enableWithdrawals")
    enable_internal_transfer: bool = Field(alias="enableInternalTransfer")
    permits_universal_transfer: bool = Field(alias="permitsUniversalTransfer")
    enable_spot_and_margin_trading: bool = Field(alias="enableSpotAndMarginTrading")
    enable_reading: bool = Field(alias="enableReading")
    enable_futures: bool = Field(False, alias="enableFutures")
    enable_margin: bool = Field(False, alias="enableMargin")
    enable_vanilla_options: bool = Field(False, alias="enableVanillaOptions")
    trading_authority_expiration_time: int | None = Field(
        None, alias="tradingAuthorityExpirationTime"
    )
    create_time: int | None = Field(None, alias="createTime")


def _moves_funds(r: ApiRestrictions) -> list[str]:
    out = []
    if r.enable_withdrawals:
        out.append("withdrawals enabled")
    if r.enable_internal_transfer:
        out.append("internal transfers enabled")
    if r.permits_universal_transfer:
        out.append("universal transfers enabled")
    return out


def trading_refusal(r: ApiRestrictions) -> str | None:
    """Why a trading key is refused, or None: it must trade spot and never move funds."""
    why = _moves_funds(r)
    if not r.enable_spot_and_margin_trading:
        why.append("spot trading not enabled")
    if not why:
        return None
    return f"trading key refused ({', '.join(why)}): enable spot trading only, never withdrawals or transfers"


def read_only_refusal(r: ApiRestrictions) -> str | None:
    """Why a read-only key is refused, or None: it must only read."""
    why = []
    if r.enable_spot_and_margin_trading:
        why.append("spot trading enabled")
    if r.enable_margin:
        why.append("margin enabled")
    if r.enable_futures:
        why.append("futures enabled")
    if r.enable_vanilla_options:
        why.append("options enabled")
    why += _moves_funds(r)
    if not r.enable_reading:
        why.append("reading not enabled")
    if not why:
        return None
    return f"read-only key refused ({', '.join(why)}): a read-only key must only read"


_RULES: Final[Mapping[KeyPurpose, Callable[[ApiRestrictions], str | None]]] = {
    KeyPurpose.TRADING: trading_refusal,
    KeyPurpose.READ_ONLY: read_only_refusal,
}


def key_id(api_key: str) -> str:
    """A stable id of ``api_key`` for caches and logs: a digest prefix, never the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def unchecked_note(exchange: str, testnet: bool) -> str:
    """Why a key's permissions are not asked on this venue."""
    if testnet:
        return (
            f"{exchange} testnet: key permissions not checked (the spot testnet has no /sapi "
            f"endpoints, so no {ENDPOINT}); the live venue requires the check"
        )
    return f"{exchange}: key permissions not checked (no key-permission endpoint is read there)"


@dataclass(frozen=True)
class _Checked:
    at: datetime
    refusal: str | None


class KeyPermissionChecks:
    """The permission check per key, cached ``max_age`` on ``clock`` (one instance per
    execution environment). An answer that cannot be read is not cached."""

    def __init__(self, clock: Clock, max_age: timedelta = DEFAULT_CHECK_MAX_AGE) -> None:
        if max_age < timedelta(0):
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self._clock = clock
        self._max_age = max_age
        self._cache: dict[tuple[KeyPurpose, str], _Checked] = {}

    def refusal(
        self, purpose: KeyPurpose, api_key: str, ask: Callable[[], Mapping[str, Any]]
    ) -> str | None:
        """Why the key is refused for ``purpose``, or None; ``ask`` reads the venue's answer
        (any exception it raises is a refusal: the permissions are unknown)."""
        now = self._clock.now()
        entry = (purpose, key_id(api_key))
        cached = self._cache.get(entry)
        if cached is not None and now - cached.at < self._max_age:
            return cached.refusal
        try:
            raw = ask()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the permissions unknown
            text = sanitize_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if api_key:
                text = text.replace(api_key, "[REDACTED]")
            return f"{purpose} key refused: its permissions could not be read ({ENDPOINT}: {text})"
        try:
            restrictions = ApiRestrictions.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            return f"{purpose} key refused: {ENDPOINT} answer not understood (fields {fields})"
        refusal = _RULES[purpose](restrictions)
        self._cache[entry] = _Checked(now, refusal)
        return refusal
