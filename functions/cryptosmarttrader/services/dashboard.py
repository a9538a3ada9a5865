"""The read views behind the web dashboard: one call per page where the stores allow it.

``DashboardService`` reads through the same ports as the rest of the API (signals, orders,
positions, risk state, audit trail, go-live records, model registry, market data), so the API
Lambda, ``cst api serve`` and the tests run the same code. Every figure it returns is either
read from a store or computed here from stored figures (and says so in its description); a
figure that does not exist yet is ``null`` or an empty list, never invented. Floats are finite:
a NaN or infinity from a computation becomes ``null`` before it reaches JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.domain.aggregates import Position
from cryptosmarttrader.domain.book import ANY_SYMBOL, RecordedOrder
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.risk import RiskThresholds
from cryptosmarttrader.domain.slo import SloThresholds
from cryptosmarttrader.domain.types import Action, Side
from cryptosmarttrader.ports import (
    AuditReader,
    OrderStore,
    PositionStore,
    RegistryReader,
    SignalHistory,
    StateReader,
)

if TYPE_CHECKING:
    # polars (and the feature and trading-cycle modules that need it) is imported by the views
    # that read candles (coin, portfolio marks), not when the API function starts
    import polars as pl

__all__ = [
    "AuditEntryView",
    "AuditResponse",
    "BreakersResponse",
    "CoinResponse",
    "DashboardService",
    "GoLiveResponse",
    "ModelsResponse",
    "PortfolioResponse",
    "UnknownSymbolError",
]

GOLIVE_PK: Final = "golive"
SLO_PK: Final = "slo"
SYMBOL_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)


@cache
def coin_features() -> tuple[str, ...]:
    """Features of one coin's own history (cross-sectional ones need the whole universe's day)."""
    from cryptosmarttrader.domain.features import FEATURE_COLUMNS

    return tuple(
        c
        for c in FEATURE_COLUMNS
        if c not in {"mcap_rank_pct", "ret_30d_xs", "ret_90d_xs", "mkt_ret_30d", "mkt_ret_90d"}
        and c not in {"breadth_sma50", "log_market_cap", "turnover_30d"}
    )


FEATURE_WARMUP_DAYS: Final = 181
BPS: Final = 10_000.0


class UnknownSymbolError(LookupError):
    """No bars, decisions, orders or position exist for this symbol."""


def finite(value: Any) -> float | None:
    """A JSON-safe float: ``None`` for missing, NaN or infinite values."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Stored records (Decimal, datetime, nested) → JSON values with every float finite."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Decimal | float):
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral():
            return int(value)
        return finite(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------- contracts


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bar(_Model):
    t: int = Field(description="bar open time, ms since the epoch (UTC)")
    o: float
    h: float
    l: float  # noqa: E741 - OHLC wire names
    c: float
    v: float | None = Field(description="base volume")


class AgentVoteView(_Model):
    agent: str
    probability: float | None
    confidence: float | None
    abstain_reason: str | None = Field(description="set when the agent abstained")
    reasons: list[str]


class DecisionView(_Model):
    asof: date
    rank: int
    action: Action
    score: float | None
    confidence: float | None
    price: float | None
    client_order_id: str | None
    order_status: str | None
    reasons: list[str]
    votes: list[AgentVoteView] = Field(
        default_factory=list, description="each agent's vote or abstention, when the scan kept them"
    )


class StatusChange(_Model):
    status: str
    at: datetime | None
    source: str = Field(
        description="recorded (the order's history) or the timestamp it is read from"
    )


class OrderView(_Model):
    client_order_id: str
    symbol: str
    side: str
    intent: str | None
    status: str
    mode: str | None
    strategy: str | None
    quantity: Decimal
    filled: Decimal | None
    average_price: Decimal | None = Field(description="fill price")
    reference_price: Decimal | None = Field(description="the decision's price")
    notional: Decimal | None
    fee: Decimal | None
    created_at: datetime | None
    updated_at: datetime | None
    filled_at: datetime | None
    reason: str | None = Field(description="why it was cancelled, rejected or expired")
    slippage_bps: float | None = Field(
        description="fill vs decision price in bps, signed so that positive is worse for us"
    )
    history: list[StatusChange]


class PositionRow(_Model):
    symbol: str
    quantity: Decimal
    average_price: Decimal | None
    cost: Decimal | None
    last_price: float | None = Field(description="close of the last recorded bar")
    market_value: float | None
    unrealized_pnl: float | None
    updated_at: datetime | None


class CoinResponse(_Model):
    symbol: str
    timeframe: str
    start: datetime
    end: datetime
    bars: list[Bar]
    bars_note: str | None = Field(description="why there are no bars, when there are none")
    decisions: list[DecisionView]
    orders: list[OrderView]
    position: PositionRow | None
    feature_columns: list[str]
    features: list[list[float | None]] = Field(
        description="rows of [t, feature_columns...], one per day; null where history is short"
    )
    unreadable_records: list[str] = Field(
        default_factory=list,
        description="stored order or position records of this coin (or whose coin cannot be "
        "read) that cannot be read, each with its key and why: left out of orders and position "
        "until the record is repaired",
    )


class EquityPoint(_Model):
    at: datetime
    equity: float | None
    reference: float | None = Field(description="the same book under the backtest's fills")
    cash: float | None
    fees: float | None
    drawdown_pct: float | None
    risk_level: str | None


class DailyPnl(_Model):
    day: date
    pnl_usd: float
    pnl_pct: float | None


class TrackingView(_Model):
    cycles: int = Field(description="consecutive cycle pairs compared")
    mean_diff_bps: float | None = Field(description="mean per-cycle return gap, paper - backtest")
    error_bps: float | None = Field(description="std of the per-cycle return gap (go-live SLI)")
    gap_bps: float | None = Field(description="equity vs its backtest twin at the last cycle")
    fill_vs_decision_bps: float | None = Field(
        description="mean slippage of the fills against the decision price"
    )


class PortfolioResponse(_Model):
    starting_equity_usd: Decimal
    equity_usd: float | None
    cash_usd: float | None
    fees_usd: float
    drawdown_pct: float | None
    max_drawdown_pct: float | None
    positions: list[PositionRow]
    orders: list[OrderView]
    equity: list[EquityPoint]
    daily_pnl: list[DailyPnl]
    tracking: TrackingView
    equity_note: str | None = Field(description="why the equity series is empty, when it is")
    unreadable_records: list[str] = Field(
        default_factory=list,
        description="stored order or position records that cannot be read, each with its key, "
        "coin and why: left out of orders, positions and fees_usd until the record is repaired",
    )


class AuditEntryView(_Model):
    at: datetime
    actor: str
    action: str
    request_id: str
    correlation_id: str | None
    details: dict[str, Any]


class AuditResponse(_Model):
    count: int
    entries: list[AuditEntryView]


class BreakerView(_Model):
    name: str
    kind: str = Field(description="riskguard (moves the level) or ingest (per exchange)")
    state: str = Field(
        description="clear, tripped (with the level it demands), or the breaker state"
    )
    value: float | None = Field(description="the last measured value, when it is stored")
    thresholds: dict[str, float] = Field(description="level → threshold (percent or count)")
    reason: str | None
    since: datetime | None


class BreakersResponse(_Model):
    breakers: list[BreakerView]


class GoLiveResponse(_Model):
    active: dict[str, Any] | None = Field(description="the stage trading runs under, if any")
    live_version: dict[str, Any] | None
    thresholds: dict[str, float] = Field(description="the SLO gates every stage must pass")
    runs: list[dict[str, Any]] = Field(description="newest first, each with transitions")
    evaluations: list[dict[str, Any]] = Field(description="SLO evaluations, newest first")


class ModelVersionView(_Model):
    label: str
    version: int
    stage: str
    capital_fraction: float | None
    drift_blocked: bool
    drift_reason: str
    created_at: datetime
    train_end: date
    target: str
    features: int
    oos: dict[str, Any] = Field(description="pooled out-of-sample metrics")
    folds: list[dict[str, Any]] = Field(description="per test block (per date range) metrics")
    evaluation: dict[str, Any] = Field(
        description="every other field of the model card, as the registry holds it"
    )
    history: list[dict[str, Any]]


class ModelsResponse(_Model):
    group: str
    registry: str
    versions: list[ModelVersionView]
    note: str | None


Bars = Callable[[str, str, datetime, datetime], "pl.DataFrame"]


# --------------------------------------------------------------------------- helpers


def _dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    number = Decimal(str(value))
    return number if number.is_finite() else None


def _history(recorded: RecordedOrder) -> list[StatusChange]:
    """The recorded status history, else what the order's timestamps tell."""
    if recorded.history:
        return [StatusChange(status=h.status, at=h.at, source="recorded") for h in recorded.history]
    steps = [StatusChange(status="NEW", at=recorded.order.created_at, source="created_at")]
    status = recorded.status
    filled_at = recorded.facts.filled_at
    if filled_at is not None and status in {OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED}:
        steps.append(StatusChange(status=status.value, at=filled_at, source="filled_at"))
    elif status is not OrderStatus.NEW:
        steps.append(StatusChange(status=status.value, at=recorded.updated_at, source="updated_at"))
    return steps


def order_view(recorded: RecordedOrder) -> OrderView:
    order, facts = recorded.order, recorded.facts
    fill = None if facts.average_price is None else facts.average_price.value
    ref = order.reference_price.value
    slippage = None
    if fill is not None:
        raw = float((fill / ref - 1) * Decimal(BPS))
        slippage = finite(raw if order.side is Side.BUY else -raw)
    reason = facts.cancel_reason or facts.reject_reason or facts.expire_reason
    return OrderView(
        client_order_id=recorded.key,
        symbol=recorded.symbol,
        side=order.side.value,
        intent=order.intent.value,
        status=recorded.status.value,
        mode=order.mode,
        strategy=order.strategy,
        quantity=recorded.quantity,
        filled=facts.filled,
        average_price=fill,
        reference_price=ref,
        notional=order.notional,
        fee=facts.fee,
        created_at=order.created_at,
        updated_at=recorded.updated_at,
        filled_at=facts.filled_at,
        reason=reason,
        slippage_bps=slippage,
        history=_history(recorded),
    )


def _decision(asof: date, row: Mapping[str, Any]) -> DecisionView:
    votes = [
        AgentVoteView(
            agent=str(v.get("agent", "?")),
            probability=finite(v.get("probability")),
            confidence=finite(v.get("confidence")),
            abstain_reason=None if v.get("abstain_reason") is None else str(v["abstain_reason"]),
            reasons=[str(r) for r in v.get("reasons") or []],
        )
        for v in row.get("votes") or []
        if isinstance(v, Mapping)
    ]
    return DecisionView(
        asof=asof,
        rank=int(row.get("rank", 0)),
        action=Action(str(row.get("action", "abstain"))),
        score=finite(row.get("score")),
        confidence=finite(row.get("confidence")),
        price=finite(row.get("price")),
        client_order_id=row.get("client_order_id"),
        order_status=row.get("order_status"),
        reasons=[str(r) for r in row.get("reasons") or []],
        votes=votes,
    )


def _report_day(report: Mapping[str, Any]) -> date:
    return date.fromisoformat(str(report["asof"])[:10])


def _bars(frame: pl.DataFrame) -> list[Bar]:
    if frame.is_empty():
        return []
    cols = frame.sort("ts").select("ts", "open", "high", "low", "close", "volume")
    return [
        Bar(t=int(t), o=o, h=h, l=lo, c=c, v=finite(v))
        for t, o, h, lo, c, v in cols.iter_rows()
        if all(finite(x) is not None for x in (o, h, lo, c))
    ]


def _features(symbol: str, daily: pl.DataFrame, since_ms: int) -> list[list[float | None]]:
    """Per-day features of one coin from its own daily bars (close observed at open + 1 day)."""
    if daily.is_empty():
        return []
    import polars as pl

    from cryptosmarttrader.domain.features import feature_frame
    from cryptosmarttrader.domain.market import DAY_MS

    frame = daily.select(
        pl.lit(symbol).alias("symbol"),
        (pl.col("ts") + DAY_MS).alias("ts"),
        pl.col("close").cast(pl.Float64),
        (pl.col("volume") * pl.col("close")).cast(pl.Float64).alias("volume"),
        pl.lit(None, dtype=pl.Float64).alias("market_cap"),
    )
    feats = feature_frame(frame).filter(pl.col("ts") >= since_ms).sort("ts")
    rows = feats.select("ts", *coin_features()).iter_rows()
    return [[float(r[0]), *(finite(x) for x in r[1:])] for r in rows]


def _drawdowns(values: Iterable[float | None]) -> list[float | None]:
    peak: float | None = None
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        peak = v if peak is None else max(peak, v)
        out.append(finite((peak - v) / peak * 100) if peak > 0 else None)
    return out


def _std(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return finite(math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)))


# --------------------------------------------------------------------------- service


@dataclass
class DashboardService:
    signals: SignalHistory
    positions: PositionStore
    orders: OrderStore
    state: StateReader
    audit: AuditReader
    registry: RegistryReader | None
    registry_kind: str
    bars: Bars
    clock: Clock
    starting_equity: Decimal
    thresholds: SloThresholds = field(default_factory=SloThresholds)

    # ------------------------------------------------------------------ coin

    def coin_view(self, symbol: str, days: int, timeframe: str = "1d") -> CoinResponse:
        """Bars, decisions, orders, the position and the feature history of one coin.

        The window ends at the latest scan's as-of date plus two days (the data is replayed
        history, so "now" may be years after the last bar), else at the clock."""
        if not _SYMBOL_RE.match(symbol):
            raise UnknownSymbolError(f"unknown symbol {symbol!r}: not a coin id")
        import polars as pl

        latest = self.signals.latest()
        anchor = (
            datetime.combine(_report_day(latest), datetime.min.time(), tzinfo=UTC)
            if latest is not None
            else self.clock.now()
        )
        end = min(anchor + timedelta(days=2), self.clock.now())
        start = end - timedelta(days=days)
        ledger, book = self.orders.all_orders(), self.positions.load_all()
        orders = [o for o in ledger if o.symbol == symbol]
        position = book.get(symbol)
        unreadable = [
            bad.describe()
            for bad in (*book.unreadable, *ledger.unreadable)
            if bad.symbol in {symbol, ANY_SYMBOL}
        ]
        reports = self.signals.between(start.date().isoformat(), end.date().isoformat())
        decisions = [
            _decision(_report_day(rep), row)
            for rep in reports
            for row in rep.get("rows", [])
            if row.get("symbol") == symbol
        ]
        note: str | None = None
        try:
            history = self.bars(
                symbol, "1d", start - timedelta(days=FEATURE_WARMUP_DAYS), end
            ).sort("ts")
        except (ValueError, LookupError) as exc:
            history, note = pl.DataFrame(), str(exc).splitlines()[0]
        if (
            history.is_empty()
            and not orders
            and not decisions
            and position is None
            and not unreadable
        ):
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r}: no bars, decisions, orders or position"
            )
        start_ms = int(start.timestamp() * 1000)
        if timeframe == "1d" or history.is_empty():
            shown = history.filter(pl.col("ts") >= start_ms) if not history.is_empty() else history
        else:
            shown = self.bars(symbol, timeframe, start, end)
        bars = _bars(shown)
        if not bars and note is None:
            note = f"no {timeframe} bars of {symbol} between {start:%Y-%m-%d} and {end:%Y-%m-%d}"
        last = float(history["close"][-1]) if not history.is_empty() else None
        return CoinResponse(
            symbol=symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            bars=bars,
            bars_note=note if not bars else None,
            decisions=sorted(decisions, key=lambda d: d.asof),
            orders=[order_view(o) for o in sorted(orders, key=lambda o: o.order.created_at)],
            position=None if position is None else self._position(symbol, position, last),
            feature_columns=["t", *coin_features()],
            features=_features(symbol, history, start_ms),
            unreadable_records=unreadable,
        )

    def _position(self, symbol: str, position: Position, last: float | None) -> PositionRow | None:
        qty = position.quantity
        if qty == 0:
            return None
        value = None if last is None else finite(float(qty) * last)
        return PositionRow(
            symbol=symbol,
            quantity=qty,
            average_price=position.average_price,
            cost=position.cost,
            last_price=finite(last),
            market_value=value,
            unrealized_pnl=None if value is None else finite(value - float(position.cost)),
            updated_at=position.updated_at,
        )

    def _last_close(self, symbol: str, at: datetime) -> float | None:
        try:
            bars = self.bars(symbol, "1h", at - timedelta(days=2), at)
        except (ValueError, LookupError):
            return None
        import polars as pl

        step = 3_600_000
        closed = bars.filter(pl.col("ts") + step <= int(at.timestamp() * 1000))
        return None if closed.is_empty() else finite(closed.sort("ts")["close"][-1])

    # ------------------------------------------------------------------ portfolio

    def portfolio_view(self) -> PortfolioResponse:
        # the execution cycle's keys (its module imports polars, as do the marks below)
        from cryptosmarttrader.services.trading_cycle import EQUITY_PREFIX, EXECUTION_PK

        ledger, book = self.orders.all_orders(), self.positions.load_all()
        orders = sorted(ledger, key=lambda o: o.order.created_at, reverse=True)
        points = sorted(
            (
                p
                for p in self.state.query(EXECUTION_PK)
                if str(p.get("sk", "")).startswith(EQUITY_PREFIX)
            ),
            key=lambda p: str(p.get("sk")),
        )
        equity = [finite(p.get("equity")) for p in points]
        drawdowns = _drawdowns(equity)
        series = [
            EquityPoint(
                at=_dt(p.get("at")) or datetime.fromisoformat(str(p["sk"])[len(EQUITY_PREFIX) :]),
                equity=e,
                reference=finite(p.get("reference")),
                cash=finite(p.get("cash")),
                fees=finite(p.get("fees")),
                drawdown_pct=dd,
                risk_level=None if p.get("risk_level") is None else str(p["risk_level"]),
            )
            for p, e, dd in zip(points, equity, drawdowns, strict=True)
        ]
        last_at = series[-1].at if series else None
        positions = [
            row
            for symbol, position in sorted(book.items())
            if (
                row := self._position(
                    symbol, position, None if last_at is None else self._last_close(symbol, last_at)
                )
            )
            is not None
        ]
        views = [order_view(o) for o in orders]
        fees = sum((float(v.fee) for v in views if v.fee is not None), 0.0)
        known = [d for d in drawdowns if d is not None]
        return PortfolioResponse(
            starting_equity_usd=self.starting_equity,
            equity_usd=series[-1].equity if series else None,
            cash_usd=series[-1].cash if series else None,
            fees_usd=finite(fees) or 0.0,
            drawdown_pct=drawdowns[-1] if drawdowns else None,
            max_drawdown_pct=max(known) if known else None,
            positions=positions,
            orders=views,
            equity=series,
            daily_pnl=self._daily(series),
            tracking=self._tracking(series, views),
            equity_note=None
            if series
            else "no execution cycle has valued the account yet (the hourly execution "
            "function records one equity point per cycle)",
            unreadable_records=[bad.describe() for bad in (*book.unreadable, *ledger.unreadable)],
        )

    def _daily(self, series: Sequence[EquityPoint]) -> list[DailyPnl]:
        """PnL per UTC day: last equity of the day minus the previous day's last (or the
        starting equity before the first day)."""
        closes: dict[date, float] = {}
        for p in series:
            if p.equity is not None:
                closes[p.at.astimezone(UTC).date()] = p.equity
        out: list[DailyPnl] = []
        previous = float(self.starting_equity)
        for day in sorted(closes):
            pnl = closes[day] - previous
            out.append(
                DailyPnl(
                    day=day,
                    pnl_usd=finite(pnl) or 0.0,
                    pnl_pct=finite(pnl / previous * 100) if previous > 0 else None,
                )
            )
            previous = closes[day]
        return out

    @staticmethod
    def _tracking(series: Sequence[EquityPoint], orders: Sequence[OrderView]) -> TrackingView:
        diffs: list[float] = []
        for a, b in pairwise(series):
            if not (a.equity and a.reference) or b.equity is None or b.reference is None:
                continue
            diffs.append((b.equity / a.equity - b.reference / a.reference) * BPS)
        last = next((p for p in reversed(series) if p.equity and p.reference), None)
        slips = [o.slippage_bps for o in orders if o.slippage_bps is not None]
        return TrackingView(
            cycles=len(diffs),
            mean_diff_bps=finite(sum(diffs) / len(diffs)) if diffs else None,
            error_bps=_std(diffs),
            gap_bps=None
            if last is None or not last.reference
            else finite((last.equity or 0) / last.reference * BPS - BPS),
            fill_vs_decision_bps=finite(sum(slips) / len(slips)) if slips else None,
        )

    # ------------------------------------------------------------------ breakers

    def breakers_view(self, limits: RiskThresholds | None = None) -> BreakersResponse:
        """The RiskGuard's breakers with the account's last measured values, and the ingest
        circuit breaker of every exchange."""
        t = limits or RiskThresholds()
        risk = self.state.get("risk", "current") or {}
        last, start, peak = (
            _dec(risk.get(k)) for k in ("last_equity", "day_start_equity", "peak_equity")
        )
        loss = (
            None
            if last is None or start is None or start <= 0
            else max(0.0, float((start - last) / start * 100))
        )
        drawdown = (
            None
            if last is None or peak is None or peak <= 0
            else max(0.0, float((peak - last) / peak * 100))
        )

        def pcts(**levels: Decimal) -> dict[str, float]:
            return {k: float(v * 100) for k, v in levels.items()}

        def judged(value: float | None, thresholds: dict[str, float]) -> str:
            if value is None:
                return "not measured yet"
            hit = [lvl for lvl, th in thresholds.items() if value >= th]
            return f"tripped: {hit[-1]}" if hit else "clear"

        daily = pcts(
            CONSERVATIVE=t.daily_loss_conservative,
            DEFENSIVE=t.daily_loss_defensive,
            EMERGENCY=t.daily_loss_emergency,
        )
        dd = pcts(
            DEFENSIVE=t.drawdown_alert, EMERGENCY=t.drawdown_emergency, SHUTDOWN=t.drawdown_shutdown
        )
        measured = "measured every execution cycle; the value is not stored (see the level history)"
        out = [
            BreakerView(
                name="daily loss",
                kind="riskguard",
                state=judged(loss, daily),
                value=finite(loss),
                thresholds=daily,
                reason="equity below the UTC day's start, percent",
                since=None,
            ),
            BreakerView(
                name="drawdown",
                kind="riskguard",
                state=judged(drawdown, dd),
                value=finite(drawdown),
                thresholds=dd,
                reason="equity below its peak, percent",
                since=None,
            ),
            BreakerView(
                name="data quality",
                kind="riskguard",
                state="see level",
                value=None,
                thresholds=pcts(DEFENSIVE=t.bad_data_defensive),
                reason=f"share of the universe the daily quality gate excludes; {measured}",
                since=None,
            ),
            BreakerView(
                name="exchange errors",
                kind="riskguard",
                state="see level",
                value=None,
                thresholds={
                    "DEFENSIVE": float(t.exchange_errors_defensive),
                    "EMERGENCY": float(t.exchange_errors_emergency),
                },
                reason=f"consecutive exchange errors; {measured}",
                since=None,
            ),
        ]
        for item in self.state.query("ingest#breaker"):
            opened = item.get("opened_at_ms")
            out.append(
                BreakerView(
                    name=f"ingest {item.get('sk')}",
                    kind="ingest",
                    state=str(item.get("state", "unknown")),
                    value=finite(item.get("consecutive_failures")),
                    thresholds={},
                    reason=None if not item.get("reason") else str(item["reason"]),
                    since=None
                    if opened is None
                    else datetime.fromtimestamp(int(opened) / 1000, tz=UTC),
                )
            )
        return BreakersResponse(breakers=out)

    # ------------------------------------------------------------------ audit, go-live, models

    def audit_view(self, limit: int) -> AuditResponse:
        entries = [
            AuditEntryView(
                at=e.at,
                actor=e.actor,
                action=e.action,
                request_id=e.request_id,
                correlation_id=e.correlation_id,
                details=json_safe(e.details),
            )
            for e in self.audit.recent(limit)
        ]
        return AuditResponse(count=len(entries), entries=entries)

    def golive_view(self, runs: int) -> GoLiveResponse:
        items = self.state.query(GOLIVE_PK)
        transitions: dict[str, list[dict[str, Any]]] = {}
        records: list[dict[str, Any]] = []
        for item in items:
            sk = str(item.get("sk", ""))
            if "#transition#" in sk:
                transitions.setdefault(str(item.get("run_id")), []).append(json_safe(item))
            elif sk.startswith("run#"):
                records.append(item)
        newest = sorted(records, key=lambda r: str(r.get("started_at", "")), reverse=True)[:runs]
        shown = {str(r.get("run_id")) for r in newest}
        evaluations = sorted(
            (e for e in self.state.query(SLO_PK) if str(e.get("run_id")) in shown),
            key=lambda e: str(e.get("sk", "")),
            reverse=True,
        )
        active = self.state.get(GOLIVE_PK, "active")
        live = self.state.get(GOLIVE_PK, "alias#live")
        t = self.thresholds
        return GoLiveResponse(
            active=None if active is None else json_safe(active),
            live_version=None if live is None else json_safe(live),
            thresholds={
                "min_uptime": t.min_uptime,
                "max_p95_latency_ms": t.max_p95_latency_ms,
                "max_tracking_error_bps": t.max_tracking_error_bps,
                "availability_objective": t.availability_objective,
                "max_burn_rate": t.max_burn_rate,
            },
            runs=[
                {
                    **json_safe({k: v for k, v in r.items() if k != "sk"}),
                    "transitions": sorted(
                        transitions.get(str(r.get("run_id")), []), key=lambda x: str(x.get("at"))
                    ),
                }
                for r in newest
            ],
            evaluations=[json_safe({k: v for k, v in e.items() if k != "sk"}) for e in evaluations],
        )

    def models_view(self) -> ModelsResponse:
        if self.registry is None:
            return ModelsResponse(
                group="", registry=self.registry_kind, versions=[], note="no registry configured"
            )
        versions = sorted(self.registry.versions(), key=lambda v: v.version, reverse=True)
        known = {"oos", "folds", "created_at", "train_end", "target", "features", "group"}
        out = []
        for v in versions:
            card = v.card.model_dump(mode="json")
            out.append(
                ModelVersionView(
                    label=v.label,
                    version=v.version,
                    stage=str(v.stage),
                    capital_fraction=finite(v.capital_fraction),
                    drift_blocked=v.drift_blocked,
                    drift_reason=v.drift_reason,
                    created_at=v.card.created_at,
                    train_end=v.card.train_end,
                    target=v.card.target,
                    features=len(v.card.features),
                    oos=json_safe(card.get("oos") or {}),
                    folds=json_safe(card.get("folds") or []),
                    evaluation=json_safe({k: x for k, x in card.items() if k not in known}),
                    history=json_safe([h.model_dump(mode="json") for h in v.history]),
                )
            )
        return ModelsResponse(
            group=self.registry.group,
            registry=self.registry_kind,
            versions=out,
            note=None
            if out
            else f"no model registered in group {self.registry.group!r} yet "
            "(cst model train registers one)",
        )
