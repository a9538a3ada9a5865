"""Risk level persistence: the RiskGuard level machine over the state table and the kill-switch.

Layout in the state table (pk ``risk``):

* sk ``current`` — the :class:`RiskState` (level, since, reason, day, equity references) and a
  ``version`` counter;
* sk ``transition#<iso time>`` — one item per transition (from, to, reason, at, actor), never
  overwritten.

Order of a change, chosen so that no single failure loses a stop:

1. an escalation to EMERGENCY or SHUTDOWN turns the kill-switch on FIRST (actor
   ``system:riskguard``). A failed write raises before anything is stored, so the level stays
   where it was and the next observation sees the same escalation and writes the switch again —
   a failed write is retried by the next cycle instead of being lost behind a stored level that
   no later observation would treat as a transition. A human who turns the switch off after a
   committed escalation is not overridden: only transitions write the switch.
2. ``current`` is written conditionally on the ``version`` it was read at (optimistic
   concurrency): two writers (the scheduled cycle and an operator's override) cannot silently
   overwrite each other; the loser gets :class:`RiskStateConflictError` with nothing stored, and
   reloads.
3. the transition is appended to the log (a new key; never overwrites).

A missing ``current`` item is never read as NORMAL while the log says otherwise: the state is
rebuilt from the last logged transition (level, since, reason; the equity references restart
from the next observation). Only an empty log means a fresh system (NORMAL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.killswitch import writable_reason
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
from cryptosmarttrader.ports import (
    KillSwitchControl,
    StateStore,
)

__all__ = [
    "RISK_PK",
    "KillSwitchControl",
    "RiskStateConflictError",
    "RiskStateService",
    "StateStore",
]

RISK_PK: Final = "risk"
CURRENT_SK: Final = "current"
TRANSITION_PREFIX: Final = "transition#"
REBUILT_PREFIX: Final = "rebuilt from the transition log (risk state item missing): "
_MAX_LOG_KEY_TRIES: Final = 10


class RiskStateConflictError(RuntimeError):
    """Another writer changed the risk state after it was read; nothing was written."""


@dataclass
class RiskStateService:
    store: StateStore
    kill_switch: KillSwitchControl
    clock: Clock
    thresholds: RiskThresholds = field(default_factory=RiskThresholds)

    def stored(self) -> RiskState | None:
        """The stored state (rebuilt from the transition log if its item is missing), or None
        on a stack that never stored one (no item and no logged transition)."""
        return self._stored()[0]

    def load(self) -> RiskState:
        """The stored state; rebuilt from the transition log if the item is missing; NORMAL
        from now only on a fresh system (no item and no logged transition)."""
        return self._load()[0]

    def observe(self, obs: RiskObservation) -> tuple[RiskState, RiskTransition | None]:
        """Feed one observation through :func:`step`, engage the switch if required, persist."""
        state, version = self._load()
        new, move = step(state, obs, self.clock.now(), self.thresholds)
        self._commit(new, move, version)
        return new, move

    def override(
        self, to_level: RiskLevel, actor: str, reason: str
    ) -> tuple[RiskState, RiskTransition]:
        """A human sets the level (the only way out of SHUTDOWN)."""
        state, version = self._load()
        new, move = human_override(state, to_level, actor, reason, self.clock.now())
        self._commit(new, move, version)
        return new, move

    def history(self) -> list[RiskTransition]:
        return [
            RiskTransition.from_dict(item)
            for item in self.store.query(RISK_PK)
            if str(item.get("sk", "")).startswith(TRANSITION_PREFIX)
        ]

    def _stored(self) -> tuple[RiskState | None, int]:
        raw = self.store.get(RISK_PK, CURRENT_SK)
        if raw is not None:
            return RiskState.from_dict(raw), int(raw.get("version", 0))
        log = self.history()
        if not log:
            return None, 0
        last = max(log, key=lambda t: t.at)
        return RiskState(last.to_level, last.at, REBUILT_PREFIX + last.reason), 0

    def _load(self) -> tuple[RiskState, int]:
        state, version = self._stored()
        return (RiskState.initial(self.clock.now()) if state is None else state), version

    def _commit(self, state: RiskState, move: RiskTransition | None, version: int) -> None:
        if move is not None and move.engages_kill_switch:
            reason = writable_reason(
                f"RiskGuard {move.to_level.name}: {move.reason}", f"RiskGuard {move.to_level.name}"
            )
            self.kill_switch.set(True, reason, SYSTEM_ACTOR)
        if not self.store.put_versioned(RISK_PK, CURRENT_SK, state.to_dict(), version):
            raise RiskStateConflictError(
                "the risk state changed since it was read (another writer: the execution "
                "cycle or an operator); nothing was written — reload and retry"
            )
        if move is not None:
            self._log(move)

    def _log(self, move: RiskTransition) -> None:
        key = TRANSITION_PREFIX + move.at.isoformat()
        for n in range(_MAX_LOG_KEY_TRIES):
            if self.store.put_new(RISK_PK, key if n == 0 else f"{key}#{n + 1}", move.to_dict()):
                return
        raise RiskStateConflictError(f"{_MAX_LOG_KEY_TRIES} transitions logged at {move.at}")
