"""RiskGuard: trading levels, their transition function, per-order limits and the kill-switch gate.

Two pure parts, no I/O and no clock of their own:

* :func:`step` — ``(state, observation, now) → (new state, transition | None)``. Escalation is
  immediate (straight to the highest level any metric demands); de-escalation is one level per
  UTC day once every metric is back under its thresholds; SHUTDOWN is only ever left by
  :func:`human_override` (actor + reason).
* :meth:`RiskGuard.evaluate` — one order against the level, the kill-switch and the limits
  (per-asset, correlation cluster, gross exposure, open positions, liquidity, quote freshness).
  Every verdict names the rule that decided it, so a rejected order always says why.

The policy (thresholds and what each level allows) is documented in docs/risk-and-execution.md;
the numbers live in :class:`RiskThresholds`, :data:`LEVEL_POLICIES` and :class:`RiskLimits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import IntEnum
from typing import Any

from cryptosmarttrader.domain.exposure import PortfolioExposure
from cryptosmarttrader.domain.orders import Holding, OrderIntent
from cryptosmarttrader.domain.types import DomainError, Money, Quantity, Side, ms_from_utc

__all__ = [
    "LEVEL_POLICIES",
    "QTY_STEP",
    "SYSTEM_ACTOR",
    "LevelPolicy",
    "MarketQuote",
    "RiskGuard",
    "RiskLevel",
    "RiskLimits",
    "RiskObservation",
    "RiskState",
    "RiskThresholds",
    "RiskTransition",
    "RiskVerdict",
    "cap_sell",
    "demanded_level",
    "human_override",
    "size_for_fraction",
    "step",
]

SYSTEM_ACTOR = "system:riskguard"


class RiskLevel(IntEnum):
    """Ordered: a higher level is always at least as restrictive."""

    NORMAL = 0
    CONSERVATIVE = 1
    DEFENSIVE = 2
    EMERGENCY = 3
    SHUTDOWN = 4


@dataclass(frozen=True, slots=True)
class LevelPolicy:
    size_multiplier: Decimal  # applied to every exposure cap for new risk
    new_entries: bool  # buys / increases allowed
    exits: bool  # sells / reductions allowed (once the kill-switch is off)
    kill_switch: bool  # entering this level turns the kill-switch on (cancels open orders)
    description: str


LEVEL_POLICIES: dict[RiskLevel, LevelPolicy] = {
    RiskLevel.NORMAL: LevelPolicy(
        Decimal("1"), True, True, False, "full size, new entries allowed"
    ),
    RiskLevel.CONSERVATIVE: LevelPolicy(
        Decimal("0.5"), True, True, False, "half size, new entries allowed"
    ),
    RiskLevel.DEFENSIVE: LevelPolicy(
        Decimal("0"), False, True, False, "no new entries, exits only"
    ),
    RiskLevel.EMERGENCY: LevelPolicy(
        Decimal("0"),
        False,
        True,
        True,
        "kill-switch on and open orders cancelled; once a human turns the switch off, "
        "exits only (flatten)",
    ),
    RiskLevel.SHUTDOWN: LevelPolicy(
        Decimal("0"), False, False, True, "nothing trades; only a human can leave SHUTDOWN"
    ),
}


# --------------------------------------------------------------------------- level machine


@dataclass(frozen=True, slots=True)
class RiskThresholds:
    """Metric thresholds (fractions). A metric at or above a threshold demands that level."""

    daily_loss_conservative: Decimal = Decimal("0.03")
    daily_loss_defensive: Decimal = Decimal("0.05")
    daily_loss_emergency: Decimal = Decimal("0.08")
    drawdown_alert: Decimal = Decimal("0.10")  # → DEFENSIVE (and an alert)
    drawdown_emergency: Decimal = Decimal("0.15")
    drawdown_shutdown: Decimal = Decimal("0.20")
    bad_data_defensive: Decimal = Decimal("0.20")  # share of the universe failing the gate
    exchange_errors_defensive: int = 3  # consecutive exchange errors
    exchange_errors_emergency: int = 10

    def __post_init__(self) -> None:
        ladders: list[tuple[str, tuple[Decimal, ...]]] = [
            (
                "daily loss",
                (
                    self.daily_loss_conservative,
                    self.daily_loss_defensive,
                    self.daily_loss_emergency,
                ),
            ),
            (
                "drawdown",
                (self.drawdown_alert, self.drawdown_emergency, self.drawdown_shutdown),
            ),
        ]
        for name, ladder in ladders:
            if not all(Decimal(0) < x < Decimal(1) for x in ladder) or list(ladder) != sorted(
                set(ladder)
            ):
                raise DomainError(f"{name} thresholds must be increasing in (0, 1): {ladder}")
        if not Decimal(0) < self.bad_data_defensive <= Decimal(1):
            raise DomainError(f"bad_data_defensive must be in (0, 1]: {self.bad_data_defensive}")
        if not 0 < self.exchange_errors_defensive < self.exchange_errors_emergency:
            raise DomainError("exchange error thresholds must satisfy 0 < defensive < emergency")


@dataclass(frozen=True, slots=True)
class RiskObservation:
    """Metrics observed at one point in time. ``equity=None`` means the equity is unknown."""

    equity: Decimal | None
    bad_data_fraction: Decimal = Decimal(0)
    consecutive_exchange_errors: int = 0
    balance_drift: str | None = None  # why the venue's balances disagree with the ledger

    def __post_init__(self) -> None:
        if self.equity is not None and (not self.equity.is_finite() or self.equity < 0):
            raise DomainError(f"equity must be finite and >= 0, got {self.equity}")
        if not self.bad_data_fraction.is_finite() or not (
            Decimal(0) <= self.bad_data_fraction <= Decimal(1)
        ):
            raise DomainError(f"bad_data_fraction must be in [0, 1], got {self.bad_data_fraction}")
        if self.consecutive_exchange_errors < 0:
            raise DomainError("consecutive_exchange_errors must be >= 0")


@dataclass(frozen=True, slots=True)
class RiskTransition:
    """One level change, with why, when and who."""

    from_level: RiskLevel
    to_level: RiskLevel
    reason: str
    at: datetime
    actor: str = SYSTEM_ACTOR

    def __post_init__(self) -> None:
        ms_from_utc(self.at)  # rejects naive datetimes
        if not self.reason.strip() or not self.actor.strip():
            raise DomainError("a risk transition needs a reason and an actor")

    @property
    def engages_kill_switch(self) -> bool:
        return LEVEL_POLICIES[self.to_level].kill_switch and self.to_level > self.from_level

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_level": self.from_level.name,
            "to_level": self.to_level.name,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskTransition:
        return cls(
            RiskLevel[str(data["from_level"])],
            RiskLevel[str(data["to_level"])],
            str(data["reason"]),
            datetime.fromisoformat(str(data["at"])),
            str(data["actor"]),
        )


@dataclass(frozen=True, slots=True)
class RiskState:
    """Everything the level machine needs to survive a restart."""

    level: RiskLevel
    since: datetime  # time of the last transition (or of the initial state)
    reason: str
    day: date | None = None  # UTC day of the last observation
    day_start_equity: Decimal | None = None
    last_equity: Decimal | None = None
    peak_equity: Decimal | None = None

    def __post_init__(self) -> None:
        ms_from_utc(self.since)

    @classmethod
    def initial(cls, now: datetime) -> RiskState:
        return cls(RiskLevel.NORMAL, now, "initial state")

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.name,
            "since": self.since.isoformat(),
            "reason": self.reason,
            "day": None if self.day is None else self.day.isoformat(),
            "day_start_equity": self.day_start_equity,
            "last_equity": self.last_equity,
            "peak_equity": self.peak_equity,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskState:
        def dec(key: str) -> Decimal | None:
            value = data.get(key)
            return None if value is None else Decimal(str(value))

        day = data.get("day")
        return cls(
            level=RiskLevel[str(data["level"])],
            since=datetime.fromisoformat(str(data["since"])),
            reason=str(data["reason"]),
            day=None if day is None else date.fromisoformat(str(day)),
            day_start_equity=dec("day_start_equity"),
            last_equity=dec("last_equity"),
            peak_equity=dec("peak_equity"),
        )


def _loss(reference: Decimal | None, equity: Decimal) -> Decimal:
    if reference is None or reference <= 0:
        return Decimal(0)
    return max(Decimal(0), (reference - equity) / reference)


def demanded_level(
    state: RiskState, obs: RiskObservation, thresholds: RiskThresholds
) -> tuple[RiskLevel, list[str]]:
    """The level the metrics alone demand, with one reason per breached threshold.

    ``state`` must already be rolled to the observation's day (see :func:`step`).
    """
    t = thresholds
    breaches: list[tuple[RiskLevel, str]] = []
    if obs.equity is None:
        breaches.append((RiskLevel.DEFENSIVE, "equity unknown: cannot measure loss"))
    else:
        daily = _loss(state.day_start_equity, obs.equity)
        for limit, level in (
            (t.daily_loss_emergency, RiskLevel.EMERGENCY),
            (t.daily_loss_defensive, RiskLevel.DEFENSIVE),
            (t.daily_loss_conservative, RiskLevel.CONSERVATIVE),
        ):
            if daily >= limit:
                breaches.append((level, f"daily loss {daily:.2%} >= {limit:.0%}"))
                break
        drawdown = _loss(state.peak_equity, obs.equity)
        for limit, level in (
            (t.drawdown_shutdown, RiskLevel.SHUTDOWN),
            (t.drawdown_emergency, RiskLevel.EMERGENCY),
            (t.drawdown_alert, RiskLevel.DEFENSIVE),
        ):
            if drawdown >= limit:
                breaches.append((level, f"drawdown {drawdown:.2%} >= {limit:.0%}"))
                break
    if obs.bad_data_fraction >= t.bad_data_defensive:
        breaches.append(
            (
                RiskLevel.DEFENSIVE,
                f"data-quality breaker: {obs.bad_data_fraction:.0%} of the universe failed the "
                f"gate (>= {t.bad_data_defensive:.0%})",
            )
        )
    if obs.balance_drift:
        breaches.append((RiskLevel.DEFENSIVE, obs.balance_drift))
    errors = obs.consecutive_exchange_errors
    if errors >= t.exchange_errors_emergency:
        breaches.append(
            (RiskLevel.EMERGENCY, f"exchange-error breaker: {errors} consecutive errors")
        )
    elif errors >= t.exchange_errors_defensive:
        breaches.append(
            (RiskLevel.DEFENSIVE, f"exchange-error breaker: {errors} consecutive errors")
        )
    if not breaches:
        return RiskLevel.NORMAL, []
    level = max(b[0] for b in breaches)
    return level, [reason for _, reason in sorted(breaches, key=lambda b: -b[0])]


def _roll(state: RiskState, obs: RiskObservation, now: datetime) -> RiskState:
    """Track the UTC day, the equity at its start and the equity peak."""
    today = now.date()
    day_start = state.day_start_equity
    if state.day != today:
        # the day's reference is the last equity seen before midnight (else the first seen today)
        day_start = state.last_equity if state.last_equity is not None else obs.equity
    if obs.equity is None:
        return replace(state, day=today, day_start_equity=day_start)
    if day_start is None:
        day_start = obs.equity
    peak = obs.equity if state.peak_equity is None else max(state.peak_equity, obs.equity)
    return replace(
        state, day=today, day_start_equity=day_start, last_equity=obs.equity, peak_equity=peak
    )


def step(
    state: RiskState,
    obs: RiskObservation,
    now: datetime,
    thresholds: RiskThresholds | None = None,
) -> tuple[RiskState, RiskTransition | None]:
    """Pure transition function of the level machine.

    * Escalate at once to the highest level any breached threshold demands.
    * De-escalate only when every metric demands less than the current level, at least one new
      UTC day has begun since the last transition, and then by exactly one level.
    * Never leave SHUTDOWN (only :func:`human_override` does).
    """
    ms_from_utc(now)
    if now < state.since:
        raise DomainError(f"observation at {now.isoformat()} precedes the state ({state.since})")
    rolled = _roll(state, obs, now)
    target, reasons = demanded_level(rolled, obs, thresholds or RiskThresholds())
    current = state.level
    if target > current:
        move = RiskTransition(current, target, "; ".join(reasons), now)
    elif target < current and current is not RiskLevel.SHUTDOWN and now.date() > state.since.date():
        lower = RiskLevel(current - 1)
        why = "; ".join(reasons) if reasons else "all metrics under their thresholds"
        move = RiskTransition(current, lower, f"new UTC day and {why}: one level down", now)
    else:
        return rolled, None
    return replace(rolled, level=move.to_level, since=now, reason=move.reason), move


def human_override(
    state: RiskState, to_level: RiskLevel, actor: str, reason: str, now: datetime
) -> tuple[RiskState, RiskTransition]:
    """An explicit human action: the only way out of SHUTDOWN; may also escalate.

    Leaving SHUTDOWN resets the equity peak to the last equity: the human acknowledges the
    loss, otherwise the next observation would demand SHUTDOWN again at once.
    """
    if not actor.strip() or actor.strip() == SYSTEM_ACTOR:
        raise DomainError("a human override needs the name of the human acting")
    if not reason.strip():
        raise DomainError("a human override needs a reason")
    if now < state.since:
        raise DomainError(f"override at {now.isoformat()} precedes the state ({state.since})")
    if to_level == state.level:
        raise DomainError(f"risk level is already {to_level.name}")
    move = RiskTransition(state.level, to_level, reason.strip(), now, actor.strip())
    peak = state.peak_equity
    if state.level is RiskLevel.SHUTDOWN:
        peak = state.last_equity
    return replace(state, level=to_level, since=now, reason=move.reason, peak_equity=peak), move


# --------------------------------------------------------------------------- order limits


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_asset_fraction: Decimal = Decimal("0.02")
    max_cluster_fraction: Decimal = Decimal("0.05")
    max_gross_fraction: Decimal = Decimal("0.20")
    max_open_positions: int = 10
    max_volume_fraction: Decimal = Decimal("0.01")  # order notional / 24 h quote volume
    max_quote_age: timedelta = timedelta(minutes=15)
    # position cap: held + new notional <= this fraction of the 30-day average daily volume
    # (None: not checked). Small coins cost what their volume allows, not what equity allows.
    max_adv_fraction: Decimal | None = None

    def __post_init__(self) -> None:
        if self.max_adv_fraction is not None and not (
            Decimal(0) < self.max_adv_fraction <= Decimal(1)
        ):
            raise DomainError(f"max_adv_fraction must be in (0, 1], got {self.max_adv_fraction}")
        for name in (
            "max_asset_fraction",
            "max_cluster_fraction",
            "max_gross_fraction",
            "max_volume_fraction",
        ):
            value = getattr(self, name)
            if not (Decimal(0) < value <= Decimal(1)):
                raise DomainError(f"{name} must be in (0, 1], got {value}")
        if self.max_open_positions < 1:
            raise DomainError(f"max_open_positions must be >= 1, got {self.max_open_positions}")
        if self.max_quote_age <= timedelta(0):
            raise DomainError("max_quote_age must be positive")


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    approved: bool
    rule: str  # the rule that decided: "ok" when approved unchanged
    reason: str
    quantity: Quantity | None = None  # approved (possibly reduced) quantity


@dataclass(frozen=True, slots=True)
class MarketQuote:
    """The market as the order sees it: reference price time and 24 h quote volume."""

    ts: datetime
    volume_24h_quote: Decimal | None
    adv_30d_quote: Decimal | None = None  # 30-day average daily quote volume

    def __post_init__(self) -> None:
        ms_from_utc(self.ts)


QTY_STEP = Decimal("0.00000001")


def size_for_fraction(equity: Money, fraction: Decimal, price: Decimal) -> Quantity | None:
    """Largest quantity (rounded down to 1e-8) whose notional is at most ``fraction`` of equity."""
    if price <= 0:
        raise DomainError(f"price must be > 0 to size an order, got {price}")
    raw = (equity.amount * fraction / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
    return Quantity(raw) if raw > 0 else None


def _reject(rule: str, reason: str) -> RiskVerdict:
    return RiskVerdict(False, rule, reason)


def cap_sell(intent: OrderIntent, holding: Holding) -> RiskVerdict:
    """A sell within what may still be sold: nothing held → ``no_position``; everything held
    already being sold → ``sell_cap`` (refused); more than the rest → reduced to it."""
    symbol = intent.symbol.value
    if holding.held <= 0:
        return _reject("no_position", f"nothing held in {symbol} to sell")
    room = holding.sellable.quantize(QTY_STEP, rounding=ROUND_DOWN)
    if room <= 0:
        return _reject(
            "sell_cap",
            f"{symbol}: the {holding.held} held are already being sold "
            f"({holding.open_sells} in open sells)",
        )
    if intent.quantity.value <= room:
        return RiskVerdict(
            True, "ok", "exit or reduction allowed at every level below SHUTDOWN", intent.quantity
        )
    return RiskVerdict(
        True,
        "sell_cap",
        f"reduced from {intent.quantity.value} to the {room} left to sell "
        f"(held {holding.held}, open sells {holding.open_sells})",
        Quantity(room),
    )


@dataclass(frozen=True, slots=True)
class RiskGuard:
    limits: RiskLimits = field(default_factory=RiskLimits)

    def check(
        self,
        intent: OrderIntent,
        *,
        equity: Money | None,
        asset_exposure: Decimal,
        level: RiskLevel,
        kill_switch_on: bool,
        kill_switch_reason: str = "",
        holding: Holding | None = None,
    ) -> RiskVerdict:
        """The per-asset subset of :meth:`evaluate` (no portfolio, cluster or market context).

        ``asset_exposure`` is the current notional held or pending in the same asset; a sell is
        capped at ``holding`` when it is given."""
        if asset_exposure < 0:
            return _reject("exposure", f"negative exposure {asset_exposure} is invalid")
        exposure = PortfolioExposure(
            {intent.symbol.value: asset_exposure} if asset_exposure else {}
        )
        return self._decide(
            intent,
            equity=equity,
            level=level,
            kill_switch_on=kill_switch_on,
            kill_switch_reason=kill_switch_reason,
            exposure=exposure,
            quote=None,
            now=None,
            portfolio_rules=False,
            holding=holding,
        )

    def evaluate(
        self,
        intent: OrderIntent,
        *,
        equity: Money | None,
        level: RiskLevel,
        kill_switch_on: bool,
        kill_switch_reason: str,
        exposure: PortfolioExposure,
        quote: MarketQuote | None,
        now: datetime,
        holding: Holding | None = None,
    ) -> RiskVerdict:
        """Every rule: kill-switch, level, equity, quote freshness, then the exposure caps
        (asset, cluster, gross), open-position count and liquidity. An entry over a cap is
        reduced to the smallest room left (the binding rule is named); no room → rejected.

        A sell is capped at ``holding.sellable`` (held minus the sells already open): a spot
        position can never be sold below zero. Without a holding a sell is refused."""
        return self._decide(
            intent,
            equity=equity,
            level=level,
            kill_switch_on=kill_switch_on,
            kill_switch_reason=kill_switch_reason,
            exposure=exposure,
            quote=quote,
            now=now,
            portfolio_rules=True,
            holding=holding,
        )

    def _decide(
        self,
        intent: OrderIntent,
        *,
        equity: Money | None,
        level: RiskLevel,
        kill_switch_on: bool,
        kill_switch_reason: str,
        exposure: PortfolioExposure,
        quote: MarketQuote | None,
        now: datetime | None,
        portfolio_rules: bool,
        holding: Holding | None = None,
    ) -> RiskVerdict:
        if kill_switch_on:
            return _reject("kill_switch", f"kill-switch is on: {kill_switch_reason}")
        policy = LEVEL_POLICIES[level]
        if not policy.exits:
            return _reject("risk_level", f"risk level {level.name}: {policy.description}")
        symbol = intent.symbol.value
        if portfolio_rules:
            if quote is None:
                return _reject("market_data", f"no quote for {symbol}: unknown symbol")
            if now is None or now - quote.ts > self.limits.max_quote_age:
                return _reject(
                    "stale_quote",
                    f"quote for {symbol} at {quote.ts.isoformat()} is older than "
                    f"{self.limits.max_quote_age} at {now.isoformat() if now else '?'}",
                )
            if quote.ts > now:
                return _reject("stale_quote", f"quote for {symbol} is in the future")
        if intent.side is Side.SELL:
            if holding is not None:
                return cap_sell(intent, holding)
            if portfolio_rules:
                return _reject(
                    "no_position", f"holding of {symbol} unknown: a sell is capped at what is held"
                )
            return RiskVerdict(
                True,
                "ok",
                "exit or reduction allowed at every level below SHUTDOWN",
                intent.quantity,
            )
        if not policy.new_entries:
            return _reject("risk_level", f"risk level {level.name}: {policy.description}")
        if equity is None or equity.amount <= 0:
            return _reject("equity", "equity unknown or not positive: cannot size")
        return self._size_entry(intent, equity.amount, policy, exposure, quote, portfolio_rules)

    def _size_entry(
        self,
        intent: OrderIntent,
        equity: Decimal,
        policy: LevelPolicy,
        exposure: PortfolioExposure,
        quote: MarketQuote | None,
        portfolio_rules: bool,
    ) -> RiskVerdict:
        lim = self.limits
        symbol = intent.symbol.value
        mult = policy.size_multiplier
        asset_cap = equity * lim.max_asset_fraction * mult
        # a coin whose stored book cannot be read holds up to a full per-asset cap, for all
        # the other coins know
        exposure = exposure.assuming(equity * lim.max_asset_fraction)
        rooms: list[tuple[str, Decimal, str]] = [
            (
                "max_asset_fraction",
                asset_cap - exposure.by_symbol.get(symbol, Decimal(0)),
                f"{symbol} cap {asset_cap:.2f} ({lim.max_asset_fraction:%} of equity x {mult})",
            )
        ]
        if portfolio_rules:
            if (
                exposure.by_symbol.get(symbol, Decimal(0)) <= 0
                and exposure.open_positions >= lim.max_open_positions
            ):
                return _reject(
                    "max_open_positions",
                    f"{exposure.open_positions} positions open, limit {lim.max_open_positions}",
                )
            cluster = exposure.cluster_of(symbol)
            cluster_cap = equity * lim.max_cluster_fraction * mult
            gross_cap = equity * lim.max_gross_fraction * mult
            rooms.append(
                (
                    "max_cluster_fraction",
                    cluster_cap - exposure.cluster_exposure(cluster),
                    f"cluster {cluster} cap {cluster_cap:.2f}",
                )
            )
            rooms.append(
                ("max_gross_fraction", gross_cap - exposure.gross, f"gross cap {gross_cap:.2f}")
            )
            volume = quote.volume_24h_quote if quote is not None else None
            if volume is None or volume <= 0:
                return _reject("liquidity", f"no 24 h volume for {symbol}: cannot check liquidity")
            rooms.append(
                (
                    "liquidity",
                    volume * lim.max_volume_fraction,
                    f"{lim.max_volume_fraction:%} of 24 h volume {volume:.0f}",
                )
            )
            if lim.max_adv_fraction is not None:
                adv = quote.adv_30d_quote if quote is not None else None
                if adv is None or adv <= 0:
                    return _reject(
                        "max_adv_fraction", f"no 30-day average volume for {symbol}: cannot cap"
                    )
                rooms.append(
                    (
                        "max_adv_fraction",
                        adv * lim.max_adv_fraction - exposure.by_symbol.get(symbol, Decimal(0)),
                        f"{lim.max_adv_fraction:%} of 30-day average volume {adv:.0f}",
                    )
                )
        rule, room, detail = min(rooms, key=lambda r: r[1])
        price = intent.reference_price.value
        notional = intent.quantity.value * price
        if room <= 0:
            return _reject(rule, f"no room left: {detail}")
        if notional <= room:
            return RiskVerdict(
                True, "ok", f"notional {notional:.2f} within every cap", intent.quantity
            )
        reduced = (room / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
        if reduced <= 0:
            return _reject(rule, f"room {room:.2f} rounds to zero quantity: {detail}")
        return RiskVerdict(
            True,
            rule,
            f"reduced from {notional:.2f} to the room {room:.2f} ({detail})",
            Quantity(reduced),
        )
