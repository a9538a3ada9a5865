"""Model registry use cases: register, list, promote, reject, roll back, load for serving.

Every stage change goes through :func:`cryptosmarttrader.domain.model_canary.transition` and is
appended to the version's history with its reason, actor and time. Exactly one version is in
``production`` at a time: promoting one archives the previous; ``rollback`` rejects the current
one and restores the most recently archived. A version whose latest drift check raised an alarm
cannot be promoted. A promotion or a rollback is one :meth:`ModelRegistry.commit` of every
version it changes (and of the production pointer): all or nothing, refused if a concurrent one
changed those versions first.

With a deployer (SageMaker registry on AWS), promotion also serves the new version on the
endpoint: the registry approves it, then the endpoint is pointed at it; if that fails, the
registry is put back exactly as it was and the error is raised, so the registry never names a
production version the endpoint does not serve. A rollback redeploys the restored version.
Local runs have no deployer: the in-process predictor reads the registry directly.

The feature hash binds a model to the feature definitions it was trained with: a digest of the
feature names and the source of :mod:`cryptosmarttrader.domain.features`. Serving refuses a model
whose hash differs from the running code's, so training/serving skew cannot go unnoticed.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.model_canary import (
    ModelCard,
    ModelStage,
    ModelVersion,
    ProductionPointer,
    StageChange,
    VersionChange,
    skill_gate,
    transition,
)
from cryptosmarttrader.ports import ModelDeployer, ModelRegistry, Predictor, RegistryStoreError
from cryptosmarttrader.settings import MlSettings

if TYPE_CHECKING:
    from cryptosmarttrader.domain.drift import DriftReference

__all__ = [
    "ArtifactLoader",
    "MlSettings",
    "ModelRegistryError",
    "ModelRegistryService",
    "feature_set_hash",
    "with_stage",
]

# (artifact bytes, feature names) -> a Predictor (e.g. XgbPredictor.from_bytes)
ArtifactLoader = Callable[[bytes, tuple[str, ...]], Predictor]


class ModelRegistryError(ValueError):
    """A registry request that cannot be honoured as asked (the message says why)."""


def feature_set_hash(names: Sequence[str] | None = None) -> str:
    """SHA-256 of the feature names (default: the feature columns) and the feature module's
    source. The feature module (polars) is imported here, not with this module: listing,
    promoting or rolling back versions never computes features."""
    from cryptosmarttrader.domain import features as feature_module

    if names is None:
        names = feature_module.FEATURE_COLUMNS
    digest = hashlib.sha256()
    digest.update("\n".join(names).encode())
    digest.update(b"\0")
    digest.update(inspect.getsource(feature_module).encode())
    return digest.hexdigest()


def with_stage(
    version: ModelVersion,
    stage: ModelStage,
    *,
    at: datetime,
    reason: str,
    actor: str,
    capital_fraction: float | None = None,
) -> ModelVersion:
    """``version`` moved to ``stage`` (checked against the transition table), history appended."""
    transition(version.stage, stage)
    change = StageChange(stage=stage, at=at, reason=reason, actor=actor)
    fraction = (
        capital_fraction
        if capital_fraction is not None
        else (version.capital_fraction if stage in (ModelStage.SHADOW, ModelStage.CANARY) else 0.0)
    )
    if stage is ModelStage.PRODUCTION:
        fraction = 1.0
    return version.model_copy(
        update={"stage": stage, "history": (*version.history, change), "capital_fraction": fraction}
    )


@dataclass(frozen=True)
class ModelRegistryService:
    registry: ModelRegistry
    clock: Clock
    deployer: ModelDeployer | None = None

    # ------------------------------------------------------------------ queries
    def versions(self) -> list[ModelVersion]:
        return self.registry.versions()

    def get(self, version: int) -> ModelVersion:
        try:
            return self.registry.get(version)
        except KeyError:
            raise ModelRegistryError(f"{self.registry.group} has no version {version}") from None

    def production(self) -> ModelVersion | None:
        """The version the registry's production pointer names (None: none is in
        production)."""
        pointer = self.registry.production_pointer()
        return None if pointer is None else self.pointed(pointer)

    def pointed(self, pointer: ProductionPointer) -> ModelVersion:
        """The version ``pointer`` names, refused unless its item agrees (in production, with
        the pointer's artefact digest)."""
        label = f"{self.registry.group}/v{pointer.version}"
        try:
            version = self.registry.get(pointer.version)
        except KeyError:
            raise ModelRegistryError(
                f"the production pointer names {label}, which is not registered"
            ) from None
        if version.stage is not ModelStage.PRODUCTION:
            raise ModelRegistryError(
                f"the production pointer names {label}, whose stage is {version.stage}"
            )
        if version.artifact_sha256 != pointer.artifact_sha256:
            raise ModelRegistryError(
                f"the production pointer's artefact digest for {label} is not the one "
                "recorded at its registration"
            )
        return version

    def load_predictor(self, version: ModelVersion, loader: ArtifactLoader) -> Predictor:
        """The version's predictor; refuses a model trained on other feature definitions, and
        an artefact that is not the one registered (``RegistryStoreError``, its digest)."""
        current = feature_set_hash(version.card.features)
        if version.card.feature_hash != current:
            raise ModelRegistryError(
                f"{version.label} was trained with feature hash {version.card.feature_hash[:12]}"
                f" but this code computes {current[:12]}: retrain it (training/serving skew)"
            )
        return loader(self.registry.checked_artifact(version), version.card.features)

    def reference(self, version: ModelVersion) -> DriftReference:
        return self.registry.reference(version.version)

    # ------------------------------------------------------------------ commands
    def register(self, card: ModelCard, artifact: bytes, reference: DriftReference) -> ModelVersion:
        if card.group != self.registry.group:
            raise ModelRegistryError(
                f"card is for group {card.group!r}, registry holds {self.registry.group!r}"
            )
        return self.registry.register(card, artifact, reference, self.clock.now())

    def move(
        self,
        version: ModelVersion,
        stage: ModelStage,
        reason: str,
        actor: str,
        capital_fraction: float | None = None,
    ) -> ModelVersion:
        moved = self._moved(version, stage, reason, actor, capital_fraction)
        self._commit([VersionChange(version, moved)], f"{version.label} not moved to {stage}")
        return moved

    def _moved(
        self,
        version: ModelVersion,
        stage: ModelStage,
        reason: str,
        actor: str,
        capital_fraction: float | None = None,
    ) -> ModelVersion:
        return with_stage(
            version,
            stage,
            at=self.clock.now(),
            reason=reason,
            actor=actor,
            capital_fraction=capital_fraction,
        )

    def _commit(self, changes: list[VersionChange], refused: str) -> None:
        """One atomic write of ``changes``; a refused or failed one is a
        :class:`ModelRegistryError` saying ``refused`` and why."""
        try:
            self.registry.commit(changes)
        except RegistryStoreError as exc:
            raise ModelRegistryError(f"{refused}: {exc}") from exc

    def promote(self, number: int, reason: str, actor: str) -> ModelVersion:
        """Make ``number`` the production version; the previous one is archived."""
        candidate = self.get(number)
        # every version, whatever trained it: no recorded walk-forward skill is a refusal
        promotable, why = skill_gate(candidate.card.skill)
        if not promotable:
            raise ModelRegistryError(f"{candidate.label} fails the skill gate: {why}")
        if candidate.drift_blocked:
            raise ModelRegistryError(
                f"{candidate.label} is blocked by a drift alarm: {candidate.drift_reason}"
            )
        transition(candidate.stage, ModelStage.PRODUCTION)  # fail before touching the incumbent
        incumbent = self.production()
        promoted = self._moved(candidate, ModelStage.PRODUCTION, reason, actor)
        changes = [VersionChange(candidate, promoted)]
        if incumbent is not None and incumbent.version != number:
            archived = self._moved(
                incumbent, ModelStage.ARCHIVED, f"replaced by v{number}: {reason}", actor
            )
            changes.insert(0, VersionChange(incumbent, archived))
        self._commit(changes, f"{candidate.label} not promoted")
        if self.deployer is not None:
            try:
                self.deployer.deploy(promoted)
            except Exception as exc:
                # Put the registry back as it was: the endpoint still serves the incumbent.
                self._commit(
                    [VersionChange(c.after, c.before) for c in changes],
                    f"{candidate.label} promoted but its deployment failed ({exc}) and the "
                    "registry could not be put back",
                )
                raise ModelRegistryError(
                    f"{candidate.label} not promoted: deploying it to endpoint "
                    f"{self.deployer.endpoint} failed ({exc}); the registry is unchanged"
                ) from exc
        return promoted

    def reject(self, number: int, reason: str, actor: str) -> ModelVersion:
        return self.move(self.get(number), ModelStage.REJECTED, reason, actor)

    def rollback(self, reason: str, actor: str) -> tuple[ModelVersion, ModelVersion | None]:
        """Reject the production version and restore the most recently archived one that
        promotion would accept today (it clears the skill gate and no drift alarm blocks it);
        if none does, production is left empty rather than serving such a version.
        Returns (rejected, restored)."""
        live = self.production()
        if live is None:
            raise ModelRegistryError(f"{self.registry.group} has no production version")
        archived = [
            v
            for v in self.registry.versions()
            if v.stage is ModelStage.ARCHIVED
            and skill_gate(v.card.skill)[0]
            and not v.drift_blocked
        ]
        archived.sort(key=lambda v: v.history[-1].at if v.history else v.card.created_at)
        rejected = self._moved(live, ModelStage.REJECTED, reason, actor)
        changes = [VersionChange(live, rejected)]
        restored = None
        if archived:
            restored = self._moved(
                archived[-1],
                ModelStage.PRODUCTION,
                f"restored by rollback of v{live.version}",
                actor,
            )
            changes.append(VersionChange(archived[-1], restored))
        self._commit(changes, f"{live.label} not rolled back")
        if restored is not None and self.deployer is not None:
            try:
                self.deployer.deploy(restored)
            except Exception as exc:
                raise ModelRegistryError(
                    f"{live.label} rejected and {restored.label} restored in the registry, "
                    f"but redeploying {restored.label} to endpoint {self.deployer.endpoint} "
                    f"failed ({exc}): the endpoint may still serve {live.label}"
                ) from exc
        return rejected, restored

    def record_drift(self, version: ModelVersion, blocked: bool, reason: str) -> ModelVersion:
        return self.registry.save(
            version.model_copy(update={"drift_blocked": blocked, "drift_reason": reason})
        )
