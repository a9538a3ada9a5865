"""The skill gate: a model version is promotable only if its walk-forward evaluation's lower
95 % bound beats the best trivial ranker."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cryptosmarttrader.domain.drift import DriftReference
from cryptosmarttrader.domain.model_canary import (
    FoldMetrics,
    ModelCard,
    ModelStage,
    ModelVersion,
    ProductionPointer,
    SkillEvidence,
    VersionChange,
    skill_gate,
)
from cryptosmarttrader.services.model_registry import ModelRegistryError, ModelRegistryService

NOW = datetime(2023, 7, 1, tzinfo=UTC)


def _evidence(ci_low: float | None, best: float | None = 0.30) -> SkillEvidence:
    return SkillEvidence(
        period="2021-07-05..2023-06-26",
        metric="precision_at_20 (trade label, per date)",
        value=0.35,
        ci_low=ci_low,
        ci_high=0.45,
        best_trivial="smallest_market_cap",
        best_trivial_value=best,
    )


def test_gate_needs_the_lower_bound_above_the_best_trivial_ranker() -> None:
    assert skill_gate(_evidence(0.31))[0] is True
    ok, why = skill_gate(_evidence(0.25))
    assert ok is False and "not above the best trivial ranker smallest_market_cap" in why
    assert skill_gate(_evidence(0.30))[0] is False  # equal is not above
    assert skill_gate(_evidence(None))[0] is False
    assert skill_gate(None)[0] is False


class _Clock:
    def now(self) -> datetime:
        return NOW


class _Registry:
    group = "cst-rank"

    def __init__(self, version: ModelVersion) -> None:
        self.stored = {version.version: version}

    def get(self, version: int) -> ModelVersion:
        return self.stored[version]

    def versions(self) -> list[ModelVersion]:
        return list(self.stored.values())

    def save(self, version: ModelVersion) -> ModelVersion:
        self.stored[version.version] = version
        return version

    def commit(self, changes: list[VersionChange]) -> None:
        for change in changes:
            self.stored[change.after.version] = change.after

    def production_pointer(self) -> ProductionPointer | None:
        live = [v for v in self.stored.values() if v.stage is ModelStage.PRODUCTION]
        return ProductionPointer(live[0].version, live[0].artifact_sha256) if live else None

    def register(self, *args: object) -> ModelVersion:
        raise NotImplementedError

    def artifact(self, version: int) -> bytes:
        return b""

    def reference(self, version: int) -> DriftReference:
        raise NotImplementedError


def _version(evidence: SkillEvidence | None) -> ModelVersion:
    fold = FoldMetrics(
        test_start=date(2021, 7, 5), test_end=date(2023, 6, 26), n_train=1, n_test=1,
        base_rate=None, auc=None, brier=None, ece=None, precision_at_k=None, lift=None,
    )  # fmt: skip
    card = ModelCard(
        group="cst-rank", created_at=NOW, data_start=date(2016, 1, 1), data_end=date(2023, 12, 27),
        train_end=date(2021, 6, 30), target="take profit", horizon_days=180, threshold=1.0,
        step_days=7, embargo_days=7, features=("vol_30d",), feature_hash="0" * 64, params={},
        folds=(fold,), oos=fold, git_commit="x", train_rows=1, skill=evidence,
    )  # fmt: skip
    return ModelVersion(
        group="cst-rank", version=1, card=card, stage=ModelStage.REGISTERED, history=()
    )


def test_the_registry_refuses_to_promote_a_model_that_fails_the_gate() -> None:
    registry = _Registry(_version(_evidence(0.25)))
    service = ModelRegistryService(registry, _Clock())  # type: ignore[arg-type]
    with pytest.raises(ModelRegistryError, match="fails the skill gate"):
        service.promote(1, "try", "tester")
    assert registry.get(1).stage is ModelStage.REGISTERED


def test_the_registry_promotes_a_model_that_clears_the_gate() -> None:
    registry = _Registry(_version(_evidence(0.31)))
    service = ModelRegistryService(registry, _Clock())  # type: ignore[arg-type]
    assert service.promote(1, "beats its baselines", "tester").stage is ModelStage.PRODUCTION


def test_the_registry_refuses_a_version_without_recorded_skill_whatever_trained_it() -> None:
    registry = _Registry(_version(None))
    service = ModelRegistryService(registry, _Clock())  # type: ignore[arg-type]
    with pytest.raises(ModelRegistryError, match="no walk-forward skill evaluation is recorded"):
        service.promote(1, "bootstrap", "tester")
    assert registry.get(1).stage is ModelStage.REGISTERED
