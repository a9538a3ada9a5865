"""The queries and the one command behind the HTTP API, with their pydantic contracts.

Everything here reads through ports (signals, positions, orders, risk state, kill-switch) or
health probes, so the API Lambda, ``cst api serve`` and the tests run the same code. Response
models are the OpenAPI schemas published in ``docs/openapi.json``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cryptosmarttrader.domain.book import blocked_symbols, book_exposure
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.killswitch import REASON_PATTERN, check_reason
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.ports import (
    AuditRecord,
    AuditTrail,
    KillSwitchControl,
    KillSwitchValue,
    OrderStore,
    PositionStore,
    RiskReader,
    SignalReader,
)
from cryptosmarttrader.services.health import (
    HealthCheck,
    HealthProbe,
    HealthResponse,
    HealthService,
)

__all__ = [
    "ApiError",
    "ApiService",
    "AuditTrail",
    "HealthCheck",
    "HealthProbe",
    "HealthResponse",
    "KillSwitchRequest",
    "KillSwitchResponse",
    "Liveness",
    "MarketOverview",
    "PositionsResponse",
    "RiskResponse",
    "SignalsResponse",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- contracts


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Liveness(_Model):
    """The public liveness answer: the API answers. No dependency, version or internals."""

    status: Literal["ok"] = "ok"


class VoteView(_Model):
    agent: str
    probability: float | None
    confidence: float | None
    abstain_reason: str | None = Field(description="set when the agent abstained")
    reasons: list[str]


class Opportunity(_Model):
    rank: int = Field(ge=1)
    symbol: str
    action: Action
    score: float | None
    confidence: float | None
    price: float | None
    client_order_id: str | None
    order_status: str | None
    reasons: list[str]
    votes: list[VoteView] = Field(
        default_factory=list,
        description="each agent's vote or abstention (empty for scans that did not keep them)",
    )


class MarketOverview(_Model):
    asof: date | None = Field(description="as-of date of the latest published scan")
    universe: int | None = Field(description="coins considered by that scan")
    excluded_by_quality: int | None
    regime: str | None = Field(description="market regime, when the regime agent publishes one")
    regime_source: str
    regime_effect: str | None = Field(
        default=None,
        description="what the regime changed in that scan (the position-size multiplier it "
        "selected), null when the scan did not say",
    )
    model_version: str | None = Field(
        default=None,
        description="what produced that scan's scores (null before any scan, or for scans "
        "that did not say)",
    )
    decision_basis: str | None = Field(
        default=None,
        description="how that scan decided, e.g. that no promoted model served it and it "
        "ordered nothing (null before any scan, or for scans that did not say)",
    )
    risk_level: str
    kill_switch_on: bool
    top_opportunities: list[Opportunity]


class SignalsResponse(_Model):
    asof: date | None
    count: int
    signals: list[Opportunity]
    model_version: str | None = Field(
        default=None, description="what produced the scores (null for scans that did not say)"
    )
    decision_basis: str | None = Field(
        default=None, description="how confidence was computed (calibrated or not)"
    )
    universe: int | None = Field(default=None, description="coins the scan considered")
    excluded_by_quality: int | None = None


class PositionView(_Model):
    symbol: str
    quantity: Decimal
    notional: Decimal
    average_price: Decimal | None
    updated_at: str | None


class OpenOrderView(_Model):
    client_order_id: str
    symbol: str
    side: str
    status: str
    quantity: Decimal
    notional: Decimal | None
    mode: str | None
    created_at: str | None


class PositionsResponse(_Model):
    positions: list[PositionView]
    open_orders: list[OpenOrderView]
    unreadable_records: list[str] = Field(
        default_factory=list,
        description="stored position or order records that cannot be read, each with its key, "
        "coin and why: left out of the lists above (their coin's holding is unknown, not none) "
        "until the record is repaired",
    )


class KillSwitchView(_Model):
    on: bool
    reason: str
    actor: str
    at: datetime
    golive_rollback: str | None = Field(
        default=None,
        description="the go-live run whose rollback engaged the switch (its sweeps then keep "
        "held positions' protective sells); written only by the rollback, null otherwise",
    )


class TransitionView(_Model):
    from_level: str
    to_level: str
    reason: str
    actor: str
    at: datetime


class RiskResponse(_Model):
    venue_mode: Literal["paper", "testnet", "live"] = Field(
        default="paper",
        description="where the execution function sends orders: paper, testnet or live",
    )
    level: str
    since: datetime
    reason: str
    kill_switch: KillSwitchView
    equity_usd: Decimal
    max_asset_fraction: Decimal
    exposure_usd: dict[str, Decimal] = Field(description="positions plus open buy orders")
    gross_exposure_usd: Decimal
    gross_exposure_pct: Decimal
    account_equity_usd: Decimal | None = Field(
        description="equity at the last execution cycle (cash after fills and fees plus "
        "positions at the last close); null before the first priced cycle"
    )
    daily_pnl_pct: Decimal | None = Field(
        description="equity change since the UTC day start, percent; null when unknown"
    )
    drawdown_pct: Decimal | None = Field(
        description="equity below its peak, percent (>= 0); null when unknown"
    )
    recent_transitions: list[TransitionView]
    unreadable_records: dict[str, str] = Field(
        default_factory=dict,
        description="coins with a stored order or position record that cannot be read, each "
        'with why ("*": a record of an unknown coin): their exposure is unknown and not in '
        "exposure_usd, and no new entry is taken on them until the record is repaired",
    )


class KillSwitchRequest(_Model):
    # Python's regex semantics for the pattern, the ones the published schema is fuzzed with
    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")

    on: bool = Field(description="true stops all new orders; false resumes")
    reason: str = Field(
        min_length=3,
        max_length=500,
        pattern=REASON_PATTERN,
        description="why, with at least 3 non-blank characters and no control or formatting "
        "character (stored and audited)",
    )

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        # printable and short enough for the SSM value (domain.killswitch)
        return check_reason(value)


class ApiError(BaseModel):
    """Error body: API Gateway's ``{"message"}`` or the function's ``{"statusCode", "message"}``."""

    model_config = ConfigDict(frozen=True)

    message: str
    statusCode: int | None = None  # noqa: N815 - the wire name Powertools and API Gateway use


class KillSwitchResponse(_Model):
    kill_switch: KillSwitchView
    audit_id: str | None = Field(
        description="sort key (<iso time>#<request id>) of the audit entry recording the "
        "outcome; null if that entry could not be written after the switch moved (the request "
        "entry below still records the change)"
    )
    request_audit_id: str = Field(
        description="sort key of the audit entry recording the request, written before the "
        "switch is touched"
    )


# --------------------------------------------------------------------------- ports


# --------------------------------------------------------------------------- service


def _kill_view(state: KillSwitchValue) -> KillSwitchView:
    return KillSwitchView(
        on=state.on,
        reason=state.reason,
        actor=state.actor,
        at=state.at,
        golive_rollback=state.golive_rollback,
    )


def _finite(value: Any) -> Any:
    """NaN / infinity → None (never in JSON); everything else unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _opportunities(report: Mapping[str, Any]) -> list[Opportunity]:
    return [Opportunity.model_validate(_finite(row)) for row in report.get("rows", [])]


def _pct_change(reference: Decimal | None, value: Decimal | None) -> Decimal | None:
    if reference is None or value is None or reference <= 0:
        return None
    return ((value - reference) / reference * 100).quantize(Decimal("0.01"))


@dataclass
class ApiService:
    signals: SignalReader
    positions: PositionStore
    orders: OrderStore
    risk: RiskReader
    kill_switch: KillSwitchControl
    audit: AuditTrail
    probes: Sequence[HealthProbe]
    clock: Clock
    equity_usd: Decimal
    max_asset_fraction: Decimal
    venue_mode: Literal["paper", "testnet", "live"] = "paper"

    def health(self) -> HealthResponse:
        return HealthService(self.probes, self.clock, self.venue_mode).check()

    def market_overview(self, top: int) -> MarketOverview:
        report = self.signals.latest()
        state = self.risk.load()
        kill = self.kill_switch.status()
        if report is None:
            return MarketOverview(
                asof=None,
                universe=None,
                excluded_by_quality=None,
                regime=None,
                regime_source="no scan report published yet",
                risk_level=state.level.name,
                kill_switch_on=kill.on,
                top_opportunities=[],
            )
        regime = report.get("regime")
        rows = [o for o in _opportunities(report) if o.action is Action.BUY][:top]
        return MarketOverview(
            asof=date.fromisoformat(str(report["asof"])[:10]),
            universe=int(report["universe"]),
            excluded_by_quality=int(report.get("excluded_by_quality", 0)),
            regime=None if regime is None else str(regime),
            regime_source=(
                "scan report"
                if regime is not None
                else f"scan report: regime unknown ({report['regime_reason']})"
                if report.get("regime_reason")
                else "not published by the scan"
            ),
            regime_effect=report.get("regime_effect"),
            model_version=report.get("model_version"),
            decision_basis=report.get("decision_basis"),
            risk_level=state.level.name,
            kill_switch_on=kill.on,
            top_opportunities=rows,
        )

    def signals_for(self, asof: date | None, action: Action | None, limit: int) -> SignalsResponse:
        report = self.signals.at(asof.isoformat()) if asof else self.signals.latest()
        if report is None:
            return SignalsResponse(asof=asof, count=0, signals=[])
        rows = _opportunities(report)
        if action is not None:
            rows = [r for r in rows if r.action is action]
        rows = rows[:limit]
        return SignalsResponse(
            asof=date.fromisoformat(str(report["asof"])[:10]),
            count=len(rows),
            signals=rows,
            model_version=report.get("model_version"),
            decision_basis=report.get("decision_basis"),
            universe=None if report.get("universe") is None else int(report["universe"]),
            excluded_by_quality=None
            if report.get("excluded_by_quality") is None
            else int(report["excluded_by_quality"]),
        )

    def positions_view(self) -> PositionsResponse:
        book, ledger = self.positions.load_all(), self.orders.all_orders()
        positions = [
            PositionView(
                symbol=symbol,
                quantity=position.quantity,
                notional=position.notional,
                average_price=position.average_price,
                updated_at=None if position.updated_at is None else position.updated_at.isoformat(),
            )
            for symbol, position in sorted(book.items())
            if position.quantity != 0  # a position sold down to zero is closed
        ]
        open_orders = [
            OpenOrderView(
                client_order_id=recorded.key,
                symbol=recorded.symbol,
                side=recorded.side.value,
                status=recorded.status.value,
                quantity=recorded.quantity,
                notional=recorded.order.notional,
                mode=recorded.order.mode,
                created_at=recorded.order.created_at.isoformat(),
            )
            for recorded in ledger
            if not recorded.order.is_terminal
        ]
        return PositionsResponse(
            positions=positions,
            open_orders=open_orders,
            unreadable_records=[bad.describe() for bad in (*book.unreadable, *ledger.unreadable)],
        )

    def risk_view(self, transitions: int = 10) -> RiskResponse:
        state = self.risk.load()
        # the open-orders index holds every order not finished: the exposure's open buys
        positions, open_orders = self.positions.load_all(), self.orders.open_orders()
        exposure = book_exposure(positions, open_orders)
        gross = sum(exposure.values(), Decimal(0))
        history = sorted(self.risk.history(), key=lambda t: t.at, reverse=True)[:transitions]
        return RiskResponse(
            venue_mode=self.venue_mode,
            level=state.level.name,
            since=state.since,
            reason=state.reason,
            kill_switch=_kill_view(self.kill_switch.status()),
            equity_usd=self.equity_usd,
            max_asset_fraction=self.max_asset_fraction,
            exposure_usd={s: v for s, v in sorted(exposure.items()) if v != 0},
            gross_exposure_usd=gross,
            gross_exposure_pct=(gross / self.equity_usd * 100).quantize(Decimal("0.01")),
            account_equity_usd=state.last_equity,
            daily_pnl_pct=_pct_change(state.day_start_equity, state.last_equity),
            drawdown_pct=(
                None
                if (change := _pct_change(state.peak_equity, state.last_equity)) is None
                else abs(change)  # the peak is never below the last equity
            ),
            recent_transitions=[
                TransitionView(
                    from_level=t.from_level.name,
                    to_level=t.to_level.name,
                    reason=t.reason,
                    actor=t.actor,
                    at=t.at,
                )
                for t in history
            ],
            unreadable_records=blocked_symbols(positions, open_orders),
        )

    def set_kill_switch(
        self,
        request: KillSwitchRequest,
        *,
        actor: str,
        request_id: str,
        correlation_id: str | None,
    ) -> KillSwitchResponse:
        """Audit the request, then flip the switch, then audit the outcome.

        The request entry is written first: if it cannot be, the switch is not touched (the
        error propagates, a 503), so no change of the switch is ever unaudited. A failed switch
        write is audited as ``killswitch.<on|off>.failed`` (best effort) and re-raised. If only
        the outcome entry fails, the switch has moved and the request entry records it: the
        answer says so with ``audit_id`` null.
        """
        action = "killswitch.on" if request.on else "killswitch.off"
        before = self.kill_switch.status()
        intent = self.audit.record(
            actor=actor,
            action=f"{action}.requested",
            at=self.clock.now(),
            request_id=request_id,
            correlation_id=correlation_id,
            details={
                "reason": request.reason,
                "previous_on": before.on,
                "requested_on": request.on,
            },
        )

        def outcome(name: str, details: Mapping[str, Any]) -> AuditRecord:
            return self.audit.record(
                actor=actor,
                action=name,
                at=self._after(intent.at),
                request_id=request_id,
                correlation_id=correlation_id,
                details={"reason": request.reason, "previous_on": before.on, **details,
                         "request_audit_id": intent.sort_key},
            )  # fmt: skip

        try:
            after = self.kill_switch.set(request.on, request.reason, actor)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the original error is what the caller sees
                outcome(f"{action}.failed", {"error": type(exc).__name__})
            raise
        try:
            done: str | None = outcome(action, {"on": after.on}).sort_key
        except Exception:  # the switch moved and the request entry records it
            log.exception("kill-switch set but its outcome audit entry failed")
            done = None
        return KillSwitchResponse(
            kill_switch=_kill_view(after), audit_id=done, request_audit_id=intent.sort_key
        )

    def _after(self, earlier: datetime) -> datetime:
        """Now, but strictly after ``earlier``: an outcome always sorts after its request."""
        now = self.clock.now()
        return now if now > earlier else earlier + timedelta(microseconds=1)
