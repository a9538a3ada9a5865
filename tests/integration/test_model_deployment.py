"""Promotion redeploys the serverless endpoint; rollback redeploys the restored version (moto).

moto models SageMaker's control plane: models, endpoint configurations and endpoints are
created and described, nothing is pulled or served. It has no UpdateEndpoint, so
``tests/moto_shims.update_endpoint`` applies the new configuration as the real call does when
the update completes; InService/Updating transitions are not modelled. Serving itself is proven
by ``tests/integration/test_ml_training.py`` (``ml/inference.py`` functions on real rows).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.responses import SageMakerResponse

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.local_aws import ensure_resources
from cryptosmarttrader.adapters.model_registry_sagemaker import SageMakerModelRegistry
from cryptosmarttrader.adapters.sagemaker_deployer import SageMakerEndpointDeployer
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.model_canary import ModelStage
from cryptosmarttrader.handlers import _common, model_canary
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryError, ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    trained_models,
    universe,
)
from tests.moto_shims import update_endpoint

pytestmark = pytest.mark.realdata

REGION, BUCKET, TABLE, GROUP = "us-east-1", "deploy-lake", "deploy-state", "cst-daily-ml"
ENDPOINT = "cst-daily-ml"
ROLE = "arn:aws:iam::123456789012:role/cst-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SERVING = (Path(__file__).parents[2] / "ml" / "inference.py").read_bytes()


@dataclass
class Env:
    sm: Any
    clients: AwsClients
    service: ModelRegistryService


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    with mock_aws():
        clients = AwsClients.build(AwsResources(lake_bucket=BUCKET, state_table=TABLE))
        ensure_resources(clients, datetime(2019, 7, 1, tzinfo=UTC))
        sm = boto3.client("sagemaker", region_name=REGION)
        registry = SageMakerModelRegistry(
            GROUP, sagemaker=sm, s3=clients.s3, bucket=BUCKET, image_uri=IMAGE,
            serving_code=SERVING,
        )  # fmt: skip
        registry.ensure_group()
        deployer = SageMakerEndpointDeployer(sm, group=GROUP, endpoint=ENDPOINT, role_arn=ROLE)
        clock = FixedClock(datetime(2019, 7, 1, tzinfo=UTC))
        yield Env(sm, clients, ModelRegistryService(registry, clock, deployer))


def _register(env: Env, model: TrainedModel) -> int:
    assert isinstance(model.predictor, XgbPredictor)
    return env.service.register(model.card, model.predictor.to_bytes(), model.reference).version


def _served(env: Env) -> tuple[str, dict[str, Any]]:
    """(package ARN the endpoint's model comes from, the serverless variant)."""
    endpoint = env.sm.describe_endpoint(EndpointName=ENDPOINT)
    config = env.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    model = env.sm.describe_model(ModelName=variant["ModelName"])
    assert model["ExecutionRoleArn"] == ROLE
    container = model["PrimaryContainer"]
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    return container["ModelPackageName"], variant


def _package(env: Env, version: int) -> dict[str, Any]:
    packages = env.sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    arn = next(p["ModelPackageArn"] for p in packages if p["ModelPackageVersion"] == version)
    return dict(env.sm.describe_model_package(ModelPackageName=arn))


def test_promote_serves_the_approved_package_and_rollback_serves_the_previous_one(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given two real models registered in SageMaker's registry
    v1, v2 = _register(env, trained_models["weak"]), _register(env, trained_models["full"])
    # When v1 is promoted (no endpoint yet), then v2, then v2 is rolled back
    env.service.promote(v1, "bootstrap", "ops")
    first_package, variant = _served(env)
    env.service.promote(v2, "beat v1 in the canary", "ops")
    second_package, _ = _served(env)
    env.service.rollback("live losses", "ops")
    restored_package, _ = _served(env)
    # Then each time the endpoint's model comes from the approved package of the version in
    # production, on one serverless variant
    assert first_package == _package(env, v1)["ModelPackageArn"]
    assert second_package == _package(env, v2)["ModelPackageArn"]
    assert restored_package == first_package
    assert _package(env, v1)["ModelApprovalStatus"] == "Approved"
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    # and the package's tarball carries the serving script the endpoint runs
    url = _package(env, v1)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    body = env.clients.s3.get_object(Bucket=BUCKET, Key=url.removeprefix(f"s3://{BUCKET}/"))
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as tar:
        assert set(tar.getnames()) == {"model.json", "card.json", "code/inference.py"}
        member = tar.extractfile("code/inference.py")
        assert member is not None and member.read() == SERVING
    # and the rollback reused v1's model and configuration instead of creating new ones
    assert len(env.sm.list_endpoint_configs()["EndpointConfigs"]) == 2
    assert len(env.sm.list_models()["Models"]) == 2


def test_a_failed_deployment_leaves_the_registry_as_it_was(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given v1 served, and an endpoint update that fails (moto without the shim answers an error)
    v1, v2 = _register(env, trained_models["weak"]), _register(env, trained_models["full"])
    env.service.promote(v1, "bootstrap", "ops")
    monkeypatch.delattr(SageMakerResponse, "update_endpoint")
    # When v2 is promoted
    with pytest.raises(ModelRegistryError, match="not promoted: deploying it to endpoint"):
        env.service.promote(v2, "try", "ops")
    # Then v1 is still the production version, approved and served; v2 is where it was
    assert env.service.get(v1).stage is ModelStage.PRODUCTION
    assert env.service.get(v2).stage is ModelStage.REGISTERED
    assert _package(env, v2)["ModelApprovalStatus"] == "PendingManualApproval"
    assert _served(env)[0] == _package(env, v1)["ModelPackageArn"]


def test_the_canary_promote_step_redeploys_the_endpoint(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the canary Lambda configured as CDK configures it (SageMaker registry + endpoint)
    version = _register(env, trained_models["full"])
    env.service.move(env.service.get(version), ModelStage.SHADOW, "canary", "tests")
    env.service.move(env.service.get(version), ModelStage.CANARY, "canary", "tests", 0.01)
    for key, value in {"CST_LAKE_BUCKET": BUCKET, "CST_STATE_TABLE": TABLE, "AWS_REGION": REGION,
                       "CST_MODEL_REGISTRY": "sagemaker", "CST_MODEL_IMAGE_URI": IMAGE,
                       "CST_MODEL_ENDPOINT": ENDPOINT, "CST_MODEL_ROLE_ARN": ROLE,
                       "POWERTOOLS_TRACE_DISABLED": "true"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    _common.reset_caches()
    model_canary._service.cache_clear()

    @dataclass
    class Context:
        function_name: str = "canary"
        memory_limit_in_mb: int = 2048
        invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:canary"
        aws_request_id: str = "req-promote"

    # When the state machine's Promote task invokes it
    result = model_canary.handler({"action": "promote", "version": version}, Context())  # type: ignore[arg-type]
    model_canary._service.cache_clear()
    # Then the version is in production and the endpoint serves its package
    assert result["stage"] == "production"
    assert _served(env)[0] == _package(env, version)["ModelPackageArn"]
