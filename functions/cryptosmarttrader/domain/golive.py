"""Go-live pipeline: stages, parameters and the stage transition table (pure).

A release goes ``staging`` (paper trading, 7 days) → SLO gate → ``canary`` (live, at most 1 % of
the risk budget, 72 hours) → SLO gate → ``production``. Any breach or failed step ends the run in
``rolled_back``. An operator may still roll back a run in ``production``; nothing leaves
``rolled_back`` (a new run starts over).

Durations are parameters of each run, so tests and rehearsals run the whole sequence in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.killswitch import RUN_ID_PATTERN as KILL_SWITCH_RUN_ID
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "DEFAULT_CANARY_SECONDS",
    "DEFAULT_STAGING_SECONDS",
    "GOLIVE_ACTOR",
    "MAX_CANARY_RISK_FRACTION",
    "STAGE_TRANSITIONS",
    "GoLiveParams",
    "IllegalStageTransitionError",
    "RunStatus",
    "Stage",
    "StagePolicy",
    "StageTransition",
    "rollback_engaged",
    "stage_policy",
    "transition",
]

DEFAULT_STAGING_SECONDS: Final = 7 * 24 * 3600
DEFAULT_CANARY_SECONDS: Final = 72 * 3600
MAX_CANARY_RISK_FRACTION: Final = 0.01
MAX_STAGE_SECONDS: Final = 90 * 24 * 3600
RUN_ID_PATTERN: Final = KILL_SWITCH_RUN_ID  # a Step Functions execution name
GOLIVE_ACTOR: Final = "system:golive"  # the deployed go-live steps' actor


class Stage(StrEnum):
    PENDING = "pending"
    STAGING = "staging"
    CANARY = "canary"
    PRODUCTION = "production"
    ROLLED_BACK = "rolled_back"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    ROLLED_BACK = "ROLLED_BACK"


STAGE_TRANSITIONS: Final[dict[Stage, frozenset[Stage]]] = {
    Stage.PENDING: frozenset({Stage.STAGING, Stage.ROLLED_BACK}),
    Stage.STAGING: frozenset({Stage.CANARY, Stage.ROLLED_BACK}),
    Stage.CANARY: frozenset({Stage.PRODUCTION, Stage.ROLLED_BACK}),
    Stage.PRODUCTION: frozenset({Stage.ROLLED_BACK}),  # the operator's manual rollback
    Stage.ROLLED_BACK: frozenset(),
}


class IllegalStageTransitionError(DomainError):
    pass


def transition(current: Stage, target: Stage) -> Stage:
    """``target`` if the move is legal, else :class:`IllegalStageTransitionError`."""
    if target not in STAGE_TRANSITIONS[current]:
        raise IllegalStageTransitionError(f"illegal go-live transition {current} -> {target}")
    return target


class GoLiveParams(BaseModel):
    """One run's parameters: the Step Functions execution input, validated by its first task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    version: str = Field(min_length=1, max_length=128)
    previous_version: str = Field(min_length=1, max_length=128)
    staging_seconds: int = Field(default=DEFAULT_STAGING_SECONDS, ge=0, le=MAX_STAGE_SECONDS)
    canary_seconds: int = Field(default=DEFAULT_CANARY_SECONDS, ge=0, le=MAX_STAGE_SECONDS)
    canary_risk_fraction: float = Field(default=MAX_CANARY_RISK_FRACTION, gt=0)
    # The SLO window of each gate; None = the stage's own duration (at least one period).
    slo_window_seconds: int | None = Field(default=None, ge=60, le=MAX_STAGE_SECONDS)
    slo_period_seconds: int = Field(default=60, ge=60, le=86_400)
    requested_by: str = Field(default="unknown", min_length=1, max_length=128)

    @model_validator(mode="after")
    def _check(self) -> GoLiveParams:
        if self.canary_risk_fraction > MAX_CANARY_RISK_FRACTION:
            raise ValueError(
                f"canary_risk_fraction {self.canary_risk_fraction} exceeds the canary's cap of "
                f"{MAX_CANARY_RISK_FRACTION:.0%} of the risk budget"
            )
        if self.version == self.previous_version:
            raise ValueError(f"version and previous_version are both {self.version!r}")
        if self.slo_period_seconds % 60:
            raise ValueError(
                f"slo_period_seconds must be a multiple of 60, got {self.slo_period_seconds}"
            )
        if not re.fullmatch(r"[A-Za-z0-9._:/+-]+", self.version + self.previous_version):
            raise ValueError("versions may hold only letters, digits and . _ : / + -")
        return self

    def window_seconds(self, stage: Stage) -> int:
        """The SLO evaluation window of ``stage``'s gate, rounded up to whole periods."""
        if stage is Stage.STAGING:
            raw = self.staging_seconds
        elif stage is Stage.CANARY:
            raw = self.canary_seconds
        else:
            raise DomainError(f"stage {stage} has no SLO gate")
        wanted = self.slo_window_seconds if self.slo_window_seconds is not None else raw
        period = self.slo_period_seconds
        return max(period, -(-wanted // period) * period)


@dataclass(frozen=True, slots=True)
class StagePolicy:
    """How the system trades while a stage is active."""

    trading_mode: Literal["paper", "live", "halted"]
    risk_budget_fraction: float


def stage_policy(stage: Stage, params: GoLiveParams) -> StagePolicy:
    """Staging trades on paper only; canary at most ``canary_risk_fraction`` (≤ 1 %)."""
    if stage is Stage.STAGING:
        return StagePolicy("paper", 0.0)
    if stage is Stage.CANARY:
        return StagePolicy("live", params.canary_risk_fraction)
    if stage is Stage.PRODUCTION:
        return StagePolicy("live", 1.0)
    return StagePolicy("halted", 0.0)


@dataclass(frozen=True, slots=True)
class StageTransition:
    """One recorded move of a run, with why and when."""

    run_id: str
    from_stage: Stage
    to_stage: Stage
    reason: str
    at: datetime
    actor: str

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise DomainError("transition time must be timezone-aware UTC")
        if not self.reason.strip():
            raise DomainError("a go-live transition needs a reason")
        transition(self.from_stage, self.to_stage)


# The reason the rollback wrote before the kill-switch value carried its marker
_LEGACY_ROLLBACK_REASON: Final = re.compile(r"go-live [A-Za-z0-9_-]{1,80} rollback(?:$|:)")


def rollback_engaged(*, golive_rollback: str | None, actor: str, reason: str) -> bool:
    """Whether the kill-switch holds for a go-live rollback. While it does, the execution
    service's sweep keeps the protective sells of held positions resting (docs/golive.md).

    Decided by the value's structure, never by its wording: the ``golive_rollback`` marker
    (a run id) that only the rollback writes. The CLI, the API and the alarm function cannot
    set it, so an operator's reason that reads like a rollback's is an operator's stop (every
    order cancelled), and a reworded rollback reason keeps the rollback's semantics. A value
    stored before the marker existed counts as the rollback's when the deployed go-live steps
    wrote it (actor ``system:golive``, which no operator path accepts) with the rollback's
    reason (``go-live <run id> rollback: <cause>``); any other unmarked value does not.

    Takes the value's fields (``ports.KillSwitchState``: ``golive_rollback``, ``actor``,
    ``reason``), not the value: the domain declares no port (tests/unit/test_ports_layout.py).
    ``golive_rollback``: the run whose rollback engaged the switch, written only by the go-live
    rollback (``GoLiveService.engage_kill_switch``), never by an operator path."""
    if golive_rollback is not None:
        return re.fullmatch(RUN_ID_PATTERN, golive_rollback) is not None
    return actor == GOLIVE_ACTOR and _LEGACY_ROLLBACK_REASON.match(reason) is not None
