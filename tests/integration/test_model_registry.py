"""Both registries behind the ModelRegistry port, on moto: embedded (S3 + DynamoDB) and the
SageMaker Model Registry (model package group, packages, approval status, metadata).

What moto does not model, so these tests do not claim it: SageMaker's validation of the
container image and of ``ModelDataUrl`` (nothing is pulled or deployed), metadata value
patterns and merge-on-update (moto replaces the map; the adapter always sends the full map),
and any endpoint. The drift handler runs in-process against the embedded registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
from cryptosmarttrader.adapters.model_registry_sagemaker import SageMakerModelRegistry
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.model_canary import IllegalStageTransitionError, ModelStage
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.handlers import drift as drift_handler
from cryptosmarttrader.ports import ModelRegistry, RegistryStoreError
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryError, ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    cleared,
    trained_models,
    universe,
)
from tests.support.aws import moto_stack

pytestmark = pytest.mark.realdata

REGION = "us-east-1"
BUCKET = "reg-lake"
TABLE = "reg-state"
GROUP = "cst-daily-ml"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    res = AwsResources(lake_bucket=BUCKET, state_table=TABLE, region=REGION)
    with moto_stack(monkeypatch, res, now=datetime(2019, 7, 1, tzinfo=UTC)) as built:
        yield built


def _embedded(clients: AwsClients) -> EmbeddedModelRegistry:
    return EmbeddedModelRegistry(
        GROUP, bucket=BUCKET, table=TABLE, s3=clients.s3, dynamodb=clients.dynamodb
    )


def _sagemaker(clients: AwsClients) -> SageMakerModelRegistry:
    registry = SageMakerModelRegistry(
        GROUP,
        sagemaker=boto3.client("sagemaker", region_name=REGION),
        s3=clients.s3,
        bucket=BUCKET,
        image_uri=IMAGE,
        serving_code=(Path(__file__).parents[2] / "ml" / "inference.py").read_bytes(),
    )
    registry.ensure_group()
    return registry


@pytest.fixture(params=["embedded", "sagemaker"])
def registry(request: pytest.FixtureRequest, clients: AwsClients) -> ModelRegistry:
    return _embedded(clients) if request.param == "embedded" else _sagemaker(clients)


def _register(service: ModelRegistryService, model: TrainedModel) -> int:
    """Register ``model`` with evidence that clears the skill gate (promotion mechanics)."""
    model = cleared(model)
    assert isinstance(model.predictor, XgbPredictor)
    return service.register(model.card, model.predictor.to_bytes(), model.reference).version


def test_versions_record_card_stage_history_and_round_trip_artifacts(
    registry: ModelRegistry,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a registry and two real trained models
    clock = FixedClock(datetime(2019, 7, 1, tzinfo=UTC))
    service = ModelRegistryService(registry, clock)
    # When both are registered, v1 promoted, then v2 promoted, then rolled back
    v1 = _register(service, trained_models["weak"])
    v2 = _register(service, trained_models["full"])
    service.promote(v1, "bootstrap", "ops")
    clock.advance(timedelta(days=1))
    service.promote(v2, "better AUC", "ops")
    clock.advance(timedelta(days=1))
    rejected, restored = service.rollback("live losses", "ops")
    # Then numbering, stages, reasons and the card survive the store
    assert (v1, v2) == (1, 2)
    assert rejected.version == 2 and rejected.stage is ModelStage.REJECTED
    assert restored is not None and restored.version == 1
    versions = service.versions()
    assert [v.stage for v in versions] == [ModelStage.PRODUCTION, ModelStage.REJECTED]
    assert [h.stage for h in versions[0].history] == [
        ModelStage.REGISTERED, ModelStage.PRODUCTION, ModelStage.ARCHIVED, ModelStage.PRODUCTION
    ]  # fmt: skip
    assert versions[1].history[-1].reason == "live losses"
    card = versions[1].card
    assert (
        card == cleared(trained_models["full"]).card
    )  # data span, features + hash, params, metrics, commit
    # and the artifact and drift reference round-trip byte for byte
    model = trained_models["full"].predictor
    assert isinstance(model, XgbPredictor)
    assert registry.artifact(2) == model.to_bytes()
    assert registry.reference(2) == trained_models["full"].reference
    # and an illegal move raises without writing
    with pytest.raises(IllegalStageTransitionError):
        service.move(service.get(2), ModelStage.CANARY, "no", "ops")
    assert service.get(2).stage is ModelStage.REJECTED


def test_sagemaker_approval_status_follows_the_stage_and_metrics_are_linked(
    clients: AwsClients,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given two versions in SageMaker's registry, the second promoted over the first
    registry = _sagemaker(clients)
    service = ModelRegistryService(registry, FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    _register(service, trained_models["weak"])
    _register(service, trained_models["full"])
    service.promote(1, "bootstrap", "ops")
    service.promote(2, "better", "ops")
    # When the packages are read straight from SageMaker
    sm = boto3.client("sagemaker", region_name=REGION)
    packages = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    status = {p["ModelPackageVersion"]: p["ModelApprovalStatus"] for p in packages}
    described = sm.describe_model_package(ModelPackageName=packages[-1]["ModelPackageArn"])
    # Then exactly the production version is Approved; the archived one is Rejected
    assert status == {1: "Rejected", 2: "Approved"}
    meta = described["CustomerMetadataProperties"]
    assert meta["cst_stage"] in {"production", "archived"}
    # and the package links the serving image, the tarball and the walk-forward metrics
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGE and container["ModelDataUrl"].endswith("model.tar.gz")
    stats_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    key = stats_uri.removeprefix(f"s3://{BUCKET}/")
    stats = json.loads(clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert len(stats["folds"]) == len(trained_models["full"].card.folds) or len(
        stats["folds"]
    ) == len(trained_models["weak"].card.folds)
    assert described["MetadataProperties"]["CommitId"] == "test"


def test_a_drift_blocked_version_cannot_be_promoted(
    clients: AwsClients,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    service = ModelRegistryService(_embedded(clients), FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    version = service.get(_register(service, trained_models["full"]))
    service.record_drift(version, True, "5/23 features drifted")
    with pytest.raises(ModelRegistryError, match="blocked by a drift alarm"):
        service.promote(version.version, "try", "ops")


def test_drift_handler_checks_the_production_model_on_real_data(
    clients: AwsClients,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the full model in production (embedded registry) and the recorded real data
    service = ModelRegistryService(_embedded(clients), FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    service.promote(_register(service, trained_models["full"]), "bootstrap", "ops")
    for key, value in {"CST_LAKE_BUCKET": BUCKET, "CST_STATE_TABLE": TABLE,
                       "CST_MODEL_REGISTRY": "embedded", "CST_DATA_SOURCE": "recorded",
                       "CST_DATA_DIR": str(data_dir), "AWS_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    _common.reset_caches()
    drift_handler._service.cache_clear()

    class Context:
        function_name = "drift"
        memory_limit_in_mb = 2048
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:drift"
        aws_request_id = "req-1"

    # When the scheduled check runs one month and one year after train_end
    soon: dict[str, Any] = drift_handler.handler({"asof": "2019-07-31"}, Context())  # type: ignore[arg-type]
    later: dict[str, Any] = drift_handler.handler({"asof": "2020-06-30"}, Context())  # type: ignore[arg-type]
    # Then both report per-feature PSI/KS and the prediction shift, with the figures real data
    # gives; calibration is judged only on outcomes whose 30-day horizon has passed
    for report in (soon, later):
        assert set(report["features"]) == set(trained_models["full"].card.features)
        assert report["prediction"]["psi"] is not None
        assert report["calibration"]["n"] > 0
    # (measured: 4 sampled days x ~150 coins per 28-day window; the window's market-wide
    # features take one value per day, so the drifted share is high in both; see docs/ml.md)
    assert 0.0 <= soon["drifted_share"] <= 1.0 and 0.0 <= later["drifted_share"] <= 1.0
    # and the version's drift flag follows the latest check
    assert service.production() is not None
    assert service.production().drift_blocked == later["blocks_promotion"]  # type: ignore[union-attr]
    # and EMF metrics were printed for CloudWatch (ModelDriftAlarm drives the alarm)
    emitted = capsys.readouterr().out
    assert '"ModelDriftAlarm"' in emitted and '"ModelPredictionPsi"' in emitted
    print(json.dumps({"soon": soon, "later": later}, default=str))


def test_a_trained_version_that_does_not_clear_the_skill_gate_is_never_promoted(
    registry: ModelRegistry,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given the real full model registered with its own walk-forward evidence
    service = ModelRegistryService(registry, FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    model = trained_models["full"]
    assert isinstance(model.predictor, XgbPredictor)
    number = service.register(model.card, model.predictor.to_bytes(), model.reference).version
    # When an operator promotes it, Then the skill gate refuses and nothing changes
    with pytest.raises(ModelRegistryError, match="fails the skill gate: precision_at_20"):
        service.promote(number, "bootstrap", "ops")
    assert service.production() is None
    assert service.get(number).stage is ModelStage.REGISTERED


def test_a_rollback_never_restores_a_version_the_gate_would_refuse(
    registry: ModelRegistry,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given v1 (the real weak model, failing the gate) in production from before every version
    # was gated, then v2 (clearing it) promoted over it
    service = ModelRegistryService(registry, FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    weak = trained_models["weak"]
    assert isinstance(weak.predictor, XgbPredictor)
    v1 = service.register(weak.card, weak.predictor.to_bytes(), weak.reference)
    service.move(v1, ModelStage.PRODUCTION, "promoted before the gate", "ops")
    v2 = _register(service, trained_models["full"])
    service.promote(v2, "clears the gate", "ops")
    assert service.get(v1.version).stage is ModelStage.ARCHIVED
    # When v2 is rolled back, Then v1 is not restored: production is left empty
    rejected, restored = service.rollback("live losses", "ops")
    assert rejected.version == v2 and restored is None
    assert service.production() is None
    assert service.get(v1.version).stage is ModelStage.ARCHIVED


def test_a_replaced_artefact_is_never_loaded_for_the_canary_or_drift_check(
    registry: ModelRegistry,
    clients: AwsClients,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a registered version whose artefact object is overwritten after registration
    service = ModelRegistryService(registry, FixedClock(datetime(2019, 7, 1, tzinfo=UTC)))
    version = service.get(_register(service, trained_models["full"]))
    assert version.artifact_sha256  # recorded at registration by both registries
    key = next(
        o["Key"]
        for o in clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")["Contents"]
        if o["Key"].endswith("/model.json")
    )
    other = trained_models["weak"].predictor
    assert isinstance(other, XgbPredictor)
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=other.to_bytes())
    # When the daily classifier's canary or drift check loads it
    # Then it is refused with the digest, never served
    with pytest.raises(RegistryStoreError, match="recorded at registration"):
        service.load_predictor(version, XgbPredictor.from_bytes)
