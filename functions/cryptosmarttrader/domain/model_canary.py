"""Model versions and their lifecycle: stages, the legal transitions, and the promotion rules.

A trained model is ``registered``; the canary runs it in ``shadow`` (it predicts beside the
incumbent, trades nothing), then as ``canary`` with a small share of capital, and promotes it to
``production`` only when its out-of-sample metrics beat the incumbent's by a set margin on the
same rows and no drift alarm stands; otherwise it is ``rejected`` (rolled back). The replaced
production version becomes ``archived`` and is what ``rollback`` restores.

Every stage change is checked against :data:`TRANSITIONS`; an illegal one raises.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "TRANSITIONS",
    "CanaryDecision",
    "CanaryPolicy",
    "FoldMetrics",
    "IllegalStageTransitionError",
    "ModelCard",
    "ModelStage",
    "ModelVersion",
    "OosScore",
    "ProductionPointer",
    "SkillEvidence",
    "StageChange",
    "VersionChange",
    "judge",
    "skill_gate",
    "transition",
]


class ModelStage(StrEnum):
    REGISTERED = "registered"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    REJECTED = "rejected"


TRANSITIONS: Final[dict[ModelStage, frozenset[ModelStage]]] = {
    # registered → production directly is the bootstrap of the very first model (or a human)
    ModelStage.REGISTERED: frozenset(
        {ModelStage.SHADOW, ModelStage.PRODUCTION, ModelStage.REJECTED}
    ),
    ModelStage.SHADOW: frozenset({ModelStage.CANARY, ModelStage.REJECTED}),
    ModelStage.CANARY: frozenset({ModelStage.PRODUCTION, ModelStage.REJECTED}),
    ModelStage.PRODUCTION: frozenset({ModelStage.ARCHIVED, ModelStage.REJECTED}),
    ModelStage.ARCHIVED: frozenset({ModelStage.PRODUCTION}),  # rollback restores it
    ModelStage.REJECTED: frozenset(),
}


class IllegalStageTransitionError(DomainError):
    """A stage change the lifecycle does not allow."""


def transition(current: ModelStage, target: ModelStage) -> ModelStage:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        raise IllegalStageTransitionError(
            f"a {current} model cannot become {target} (allowed: {allowed})"
        )
    return target


# ---------------------------------------------------------------------------- versions
class FoldMetrics(BaseModel):
    """Out-of-sample metrics of one walk-forward test block (or of all blocks pooled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test_start: date
    test_end: date
    n_train: int = Field(ge=0)
    n_test: int = Field(ge=0)
    base_rate: float | None
    auc: float | None
    brier: float | None
    ece: float | None
    precision_at_k: float | None
    lift: float | None


class SkillEvidence(BaseModel):
    """The walk-forward evaluation that judged a model, kept beside it in the registry: its
    per-date precision@k with the 95 % interval, and the best trivial ranker on the same rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: str  # "YYYY-MM-DD..YYYY-MM-DD" of the evaluated decisions
    metric: str  # e.g. "precision_at_20 (trade label)"
    value: float | None
    ci_low: float | None
    ci_high: float | None
    best_trivial: str
    best_trivial_value: float | None
    evaluation: dict[str, Any] = Field(default_factory=dict)  # the full summary


def skill_gate(evidence: SkillEvidence | None) -> tuple[bool, str]:
    """Promotable only if the lower 95 % bound of the model's figure is above the best trivial
    ranker's figure on the same rows. Missing numbers never pass."""
    if evidence is None:
        return False, "no walk-forward skill evaluation is recorded with this version"
    lo, best = evidence.ci_low, evidence.best_trivial_value
    if lo is None or best is None or math.isnan(lo) or math.isnan(best):
        return False, f"{evidence.metric}: interval or baseline undefined on {evidence.period}"
    if lo > best:
        return True, (
            f"{evidence.metric} lower 95% bound {lo:.3f} > best trivial ranker "
            f"{evidence.best_trivial} {best:.3f} ({evidence.period})"
        )
    return False, (
        f"{evidence.metric} lower 95% bound {lo:.3f} is not above the best trivial ranker "
        f"{evidence.best_trivial} {best:.3f} ({evidence.period})"
    )


class ModelCard(BaseModel):
    """Everything needed to reproduce and judge a trained model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = Field(pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9])*$", max_length=63)
    created_at: datetime
    data_start: date  # first bar read
    data_end: date  # last bar read
    train_end: date  # every training label ends on or before it
    target: str  # e.g. "gain >= 50% within 30 days"
    horizon_days: int = Field(ge=1)
    threshold: float = Field(gt=0)
    step_days: int = Field(ge=1)
    embargo_days: int = Field(ge=0)
    features: tuple[str, ...] = Field(min_length=1)
    feature_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    params: dict[str, Any]
    folds: tuple[FoldMetrics, ...]
    oos: FoldMetrics  # all walk-forward test blocks pooled
    git_commit: str
    train_rows: int = Field(ge=1)
    skill: SkillEvidence | None = None  # the walk-forward evaluation (skill gate)

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware UTC")
        return value


class StageChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: ModelStage
    at: datetime
    reason: str
    actor: str


class ModelVersion(BaseModel):
    """A registered version: its card, its current stage and how it got there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str
    version: int = Field(ge=1)
    card: ModelCard
    stage: ModelStage
    history: tuple[StageChange, ...]
    capital_fraction: float = Field(default=0.0, ge=0, le=1)  # canary share of capital
    drift_blocked: bool = False  # the latest drift check raised an alarm
    drift_reason: str = ""
    artifact_uri: str = ""
    # SHA-256 of the artefact, recorded at registration ("" for versions registered before it
    # was recorded): what a server of the version checks the artefact it reads against
    artifact_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")

    @property
    def label(self) -> str:
        return f"{self.group}/v{self.version}"

    def checked_artifact_digest(self, artifact: bytes) -> str:
        """The SHA-256 of ``artifact``, read for this version: a :class:`DomainError` when it
        is not the digest recorded at registration (the artefact was replaced since). Every
        server of a version (the warm scan, ``cst model pull-production``) checks through it."""
        digest = hashlib.sha256(artifact).hexdigest()
        if self.artifact_sha256 and digest != self.artifact_sha256:
            raise DomainError(
                f"{self.label}: artefact {self.artifact_uri} has SHA-256 {digest[:16]}..., "
                f"not the {self.artifact_sha256[:16]}... recorded at registration"
            )
        return digest


@dataclass(frozen=True, slots=True)
class ProductionPointer:
    """Which version of a group is in production, with the SHA-256 of its artefact recorded at
    registration ("" for a version registered before digests were recorded): what a server
    of the group reads to know whether the model it holds is still the promoted one."""

    version: int
    artifact_sha256: str


@dataclass(frozen=True, slots=True)
class VersionChange:
    """One version as it was read (``before``) and as it is to be stored (``after``): a
    registry writes a set of them at once, each only while the stored stage is still
    ``before.stage``."""

    before: ModelVersion
    after: ModelVersion

    def __post_init__(self) -> None:
        if (self.before.group, self.before.version) != (self.after.group, self.after.version):
            raise DomainError(
                f"a change must keep one version: {self.before.label} -> {self.after.label}"
            )


# ---------------------------------------------------------------------------- promotion rules
@dataclass(frozen=True, slots=True)
class OosScore:
    """Out-of-sample score of one model on the evaluation rows (shared with the incumbent)."""

    n: int
    auc: float
    brier: float
    precision_at_k: float


class CanaryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_samples: int = Field(default=500, ge=1)
    min_auc_gain: float = Field(default=0.01, ge=0)  # candidate AUC - incumbent AUC
    # None: Brier is reported, not gated. The ML agent's raw probability is calibrated
    # downstream by the ensemble, so ranking skill (AUC) is what a new model must improve.
    max_brier_increase: float | None = Field(default=None, ge=0)
    capital_fraction: float = Field(default=0.01, gt=0, le=0.05)  # canary share of capital


DEFAULT_POLICY: Final = CanaryPolicy()


@dataclass(frozen=True, slots=True)
class CanaryDecision:
    verdict: Literal["advance", "rollback"]
    reasons: tuple[str, ...]


def judge(
    candidate: OosScore,
    incumbent: OosScore | None,
    *,
    drift_blocked: bool,
    policy: CanaryPolicy = DEFAULT_POLICY,
) -> CanaryDecision:
    """Advance only if enough matured rows, no drift alarm, and the candidate beats the incumbent
    (or, with no incumbent, a random ranking: AUC 0.5) by the margin without a worse Brier."""
    reasons: list[str] = []
    if candidate.n < policy.min_samples:
        reasons.append(f"only {candidate.n} matured out-of-sample rows (< {policy.min_samples})")
    if drift_blocked:
        reasons.append("a drift alarm blocks promotion")
    if math.isnan(candidate.auc):
        reasons.append("candidate AUC undefined (one outcome class only)")
    else:
        bar = 0.5 if incumbent is None or math.isnan(incumbent.auc) else incumbent.auc
        who = "random (0.5)" if incumbent is None else f"incumbent {incumbent.auc:.4f}"
        gain = candidate.auc - bar
        if gain < policy.min_auc_gain:
            reasons.append(
                f"AUC {candidate.auc:.4f} vs {who}: gain {gain:+.4f} < {policy.min_auc_gain}"
            )
    limit = policy.max_brier_increase
    if limit is not None and incumbent is not None and not math.isnan(incumbent.brier):
        worse = candidate.brier - incumbent.brier
        if not worse <= limit:
            reasons.append(
                f"Brier {candidate.brier:.4f} vs incumbent {incumbent.brier:.4f} "
                f"(+{worse:.4f} > {limit})"
            )
    if reasons:
        return CanaryDecision("rollback", tuple(reasons))
    vs = "random" if incumbent is None else f"incumbent AUC {incumbent.auc:.4f}"
    return CanaryDecision(
        "advance", (f"AUC {candidate.auc:.4f} beats {vs} by >= {policy.min_auc_gain}",)
    )
