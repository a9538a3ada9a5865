"""Risk level persistence: the RiskGuard level machine over the state table and the kill-switch.

Layout in the state table (pk ``risk``):

* sk ``current`` — the :class:`RiskState` (level, since, reason, day, equity references);
* sk ``transition#<iso time>`` — one item per transition (from, to, reason, at, actor).

A transition is written before ``current``: after a crash between the two, the log still holds
the reason, and the next observation recomputes the level from the metrics. Entering EMERGENCY or
SHUTDOWN turns the kill-switch on (actor ``system:riskguard``). One writer at a time is assumed
(the scheduled risk function, or an operator through the CLI).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.risk import (
    SYSTEM_ACTOR,
    RiskLevel,
    RiskObservation,
    RiskState,
    RiskThresholds,
    RiskTransition,
    human_override,
    step,
)
from cryptosmarttrader.ports import KillSwitchState

__all__ = ["RISK_PK", "KillSwitchControl", "RiskStateService", "StateStore"]

RISK_PK = "risk"
CURRENT_SK = "current"
TRANSITION_PREFIX = "transition#"


class StateStore(Protocol):
    """Small (pk, sk) records; implemented by ``DynamoStateStore``."""

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None: ...

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def query(self, pk: str) -> list[dict[str, Any]]: ...


class KillSwitchControl(Protocol):
    """A kill-switch that can also be set; implemented by ``SsmKillSwitch``."""

    def status(self) -> KillSwitchState: ...

    def set(self, on: bool, reason: str, actor: str) -> KillSwitchState: ...


@dataclass
class RiskStateService:
    store: StateStore
    kill_switch: KillSwitchControl
    clock: Clock
    thresholds: RiskThresholds = field(default_factory=RiskThresholds)

    def stored(self) -> RiskState | None:
        """The stored state, or None on a stack that never stored one."""
        raw = self.store.get(RISK_PK, CURRENT_SK)
        return None if raw is None else RiskState.from_dict(raw)

    def load(self) -> RiskState:
        """The stored state, or NORMAL from now if none was ever stored."""
        stored = self.stored()
        return RiskState.initial(self.clock.now()) if stored is None else stored

    def observe(self, obs: RiskObservation) -> tuple[RiskState, RiskTransition | None]:
        """Feed one observation through :func:`step`, persist, engage the switch if required."""
        state = self.load()
        new, move = step(state, obs, self.clock.now(), self.thresholds)
        self._save(new, move)
        return new, move

    def override(
        self, to_level: RiskLevel, actor: str, reason: str
    ) -> tuple[RiskState, RiskTransition]:
        """A human sets the level (the only way out of SHUTDOWN)."""
        new, move = human_override(self.load(), to_level, actor, reason, self.clock.now())
        self._save(new, move)
        return new, move

    def history(self) -> list[RiskTransition]:
        return [
            RiskTransition.from_dict(item)
            for item in self.store.query(RISK_PK)
            if str(item.get("sk", "")).startswith(TRANSITION_PREFIX)
        ]

    def _save(self, state: RiskState, move: RiskTransition | None) -> None:
        if move is not None:
            self.store.put(RISK_PK, TRANSITION_PREFIX + move.at.isoformat(), move.to_dict())
        self.store.put(RISK_PK, CURRENT_SK, state.to_dict())
        if move is not None and move.engages_kill_switch:
            self.kill_switch.set(
                True, f"RiskGuard {move.to_level.name}: {move.reason}", SYSTEM_ACTOR
            )
