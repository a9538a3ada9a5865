"""Promotion serves the ranking model on its SageMaker endpoint (built-in XGBoost container).

The model is a real one: the walk-forward evaluation fitted on the recorded data (the slice of
coins and the period of tests/integration/test_skill_evaluation.py).

* The package the endpoint serves: ``model.tar.gz`` holding only ``xgboost-model``, the
  registry artefact's booster with its intercept written as a scalar (xgboost 3.0.5, the
  ``sagemaker-xgboost:3.0-5`` image's, reads the one-element vector newer xgboost writes as
  its default 0.5: checked by hand with xgboost-cpu 3.0.5, which the project does not
  install). It is loaded back with xgboost as the container
  loads it (``xgb.Booster(model_file=...)``) and fed the request body the scan sends, parsed
  as the container's CSV decoder parses it (an empty field is NaN); the answer, encoded as the
  container encodes it (margins joined by commas), decodes to the in-process ranker's scores.
* moto models SageMaker's control plane only: the model, the serverless configuration and the
  endpoint are created and described, nothing is pulled or served; it has no UpdateEndpoint
  (``cst_devtools.moto_shims.update_endpoint`` applies the configuration as the real call
  does when the update completes). The runtime call is checked with botocore's ``Stubber``:
  its expected parameters are the exact request, its answer the packaged booster's.
* moto's endpoint is ``InService`` as soon as it is created or updated; an endpoint still
  updating is its status set in moto's backend, as DescribeEndpoint shows it mid-update.
* The shared data's evaluation does not clear the skill gate, so ``promote`` refuses it and
  creates nothing; the served version is put in production through the registry's own stage
  change, as a promotion that passed the gate leaves it.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import xgboost as xgb
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto.sagemaker.responses import SageMakerResponse

from cryptosmarttrader import wiring
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.ranking_bundle import (
    bundle_artifact,
    bundle_evaluation,
    bundle_reference,
    load_ranking_bundle,
    save_ranking_bundle,
)
from cryptosmarttrader.adapters.sagemaker_deployer import (
    BOOSTER_FILE,
    NAME_MAX,
    RANKING_ENDPOINT_MAX,
    DeploymentError,
    SageMakerRankingDeployer,
    ranking_booster,
    ranking_serving_name,
    ranking_tarball,
    ranking_version_name,
)
from cryptosmarttrader.adapters.sagemaker_predictor import SageMakerRanker, encode_rows
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.model_canary import ModelStage, ModelVersion
from cryptosmarttrader.handlers import _common, model_canary
from cryptosmarttrader.ports import RankerUnavailableError
from cryptosmarttrader.services.model_registry import ModelRegistryError, with_stage
from cryptosmarttrader.services.scan import RANKING_LOOKBACK_DAYS
from cryptosmarttrader.services.scoring import RankingModel, ranking_rows, ranking_scan_votes
from cryptosmarttrader.services.skill_evaluation import (
    ranking_card,
    ranking_feature_hash,
)
from cryptosmarttrader.settings import AwsResources, MlSettings
from cst_devtools.moto_shims import update_endpoint
from tests.support.aws import moto_stack
from tests.support.skill import Tampered, evaluation

pytestmark = pytest.mark.realdata

REGION, BUCKET, TABLE = "us-east-1", "rank-lake", "rank-state"
ENDPOINT = "cst-rank"
ROLE = "arn:aws:iam::123456789012:role/cst-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Real:
    folder: Path
    model: RankingModel
    window: pl.DataFrame
    asof_ms: int


@pytest.fixture(scope="module")
def real(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Real:
    result = evaluation(data_dir)  # Tampered(data_dir, None), 30 boosting rounds
    folder = tmp_path_factory.mktemp("rank-model")
    save_ranking_bundle(folder, result)
    day = result.rows.filter(pl.col("prob").is_not_null())["day"].max()
    assert isinstance(day, int)
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    window = Tampered(data_dir, None).daily_universe(asof, RANKING_LOOKBACK_DAYS)
    return Real(folder, load_ranking_bundle(folder), window, day * DAY_MS)


def _features(real: Real) -> FloatArray:
    model = real.model
    rows, _ = ranking_rows(
        real.window, real.asof_ms, members=None, top_n=model.top_n,
        gate_days=model.gate_days, min_volume_usd=model.min_volume_usd,
    )  # fmt: skip
    return (
        rows.select(pl.col(f"{s}_pct").cast(pl.Float64).fill_null(np.nan) for s in model.signals)
        .to_numpy()
        .astype(np.float64)
    )


def _container_answer(model_dir: Path, body: bytes) -> bytes:
    """What SageMaker's XGBoost container does with a text/csv request (algorithm mode): load
    every file of the model directory as a booster, parse the CSV (an empty field is NaN,
    float64 rows into a DMatrix), predict without feature-name validation, answer the
    predictions joined by commas."""
    (path,) = list(model_dir.iterdir())
    booster = xgb.Booster(model_file=str(path))
    lines = body.strip().decode().split("\n")
    rows = np.array([["nan" if x == "" else x for x in line.split(",")] for line in lines])
    preds = booster.predict(xgb.DMatrix(rows.astype(np.float64)), validate_features=False)
    return ",".join(map(str, preds.tolist())).encode()


def _same_model(packed: bytes, original: bytes) -> bool:
    """The same JSON but for the intercept's notation (a scalar for ``[scalar]``)."""
    a, b = json.loads(packed), json.loads(original)
    pa, pb = a["learner"]["learner_model_param"], b["learner"]["learner_model_param"]
    same_intercept = float(pa.pop("base_score")) == float(pb.pop("base_score").strip("[]"))
    return same_intercept and a == b


def _unpack(tarball: bytes, into: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        assert tar.getnames() == [BOOSTER_FILE]
        tar.extractall(into, filter="data")
    return into


def test_the_packaged_booster_scores_the_scans_rows_as_the_in_process_ranker(
    real: Real, tmp_path: Path
) -> None:
    # Given the registry artefact of the real ranking model, packed for the container
    artifact = bundle_artifact(real.folder)
    booster = ranking_booster(artifact)
    assert _same_model(booster, real.model.ranker.to_bytes())
    assert json.loads(booster)["learner"]["learner_model_param"]["base_score"][0] != "["
    tarball = ranking_tarball(booster)
    assert ranking_tarball(booster) == tarball  # deterministic: same names on a retry
    with gzip.open(io.BytesIO(tarball)) as gz:
        gz.read()
        assert gz.mtime == 0  # whenever it is packed (a retry a second later included)
    model_dir = _unpack(tarball, tmp_path / "opt-ml-model")
    # and the scan's feature rows of the day (some values missing)
    x = _features(real)
    assert x.shape[0] > 5 and x.shape[1] == len(real.model.signals)

    # When the container answers the request body the scan's ranker sends
    body = encode_rows(x)
    answer = _container_answer(model_dir, body)

    # Then the decoded scores are the in-process ranker's
    from cryptosmarttrader.adapters.sagemaker_predictor import decode_scores

    remote = decode_scores(answer, x.shape[0])
    local = real.model.ranker.score(x)
    assert np.max(np.abs(remote - local)) <= 1e-9
    assert np.unique(local).size > 1  # a real ordering, not a constant


def test_an_artefact_that_is_not_a_ranking_booster_is_refused() -> None:
    classifier = json.dumps({"learner": {"objective": {"name": "binary:logistic"}}})
    with pytest.raises(DeploymentError, match="not a ranking model: objective binary:logistic"):
        ranking_booster(json.dumps({"ranker": classifier, "model": "{}"}).encode())
    with pytest.raises(DeploymentError, match="not a ranking model artefact"):
        ranking_booster(b"{}")
    two = json.dumps(
        {
            "learner": {
                "objective": {"name": "rank:ndcg"},
                "learner_model_param": {"base_score": "[0.1,0.2]"},
            }
        }
    )
    with pytest.raises(DeploymentError, match="has 2"):
        ranking_booster(json.dumps({"ranker": two, "model": "{}"}).encode())


@dataclass
class Aws:
    sm: Any
    clients: AwsClients
    resources: AwsResources
    clock: FixedClock


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    env = {
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "CST_LAKE_BUCKET": BUCKET,
        "CST_STATE_TABLE": TABLE, "CST_RANKING_ENDPOINT": ENDPOINT,
        "CST_RANKING_IMAGE_URI": IMAGE, "CST_MODEL_ROLE_ARN": ROLE, "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }  # fmt: skip
    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    clock = FixedClock(datetime(2020, 5, 1, tzinfo=UTC))
    resources = AwsResources(lake_bucket=BUCKET, state_table=TABLE, region=REGION)
    with moto_stack(monkeypatch, resources, env=env, now=clock.now()) as clients:
        yield Aws(boto3.client("sagemaker", region_name=REGION), clients, resources, clock)


def _register(real: Real, aws: Aws) -> ModelVersion:
    service = wiring.registry_service(
        MlSettings(), aws.resources, aws.clients, aws.clock, group=wiring.RANKING_GROUP
    )
    evaluation = bundle_evaluation(real.folder)
    card = ranking_card(
        evaluation, signals=real.model.signals, group=wiring.RANKING_GROUP,
        created_at=aws.clock.now(), feature_hash=ranking_feature_hash(real.model.signals),
        git_commit="0" * 40,
    )  # fmt: skip
    return service.register(card, bundle_artifact(real.folder), bundle_reference(real.folder))


def _in_production(aws: Aws, version: ModelVersion) -> ModelVersion:
    """The stage a promotion that cleared the gate leaves (the shared data's model does not)."""
    registry = wiring.ranking_registry(MlSettings(), aws.resources, aws.clients)
    return registry.save(
        with_stage(version, ModelStage.PRODUCTION, at=aws.clock.now(), reason="gate", actor="t")
    )


@dataclass
class Context:
    function_name: str = "canary"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:canary"
    aws_request_id: str = "req-deploy"


def _deploy(version: int, action: str = "deploy") -> dict[str, Any]:
    """The model-canary function, configured as the stack configures it, deploys ``version``."""
    _common.reset_caches()
    model_canary._ranking.cache_clear()
    event = {"action": action, "group": "cst-rank", "version": version}
    try:
        return dict(model_canary.handler(event, Context()))  # type: ignore[arg-type]
    finally:
        model_canary._ranking.cache_clear()


def test_a_ranking_promotion_the_gate_refuses_creates_no_endpoint(real: Real, aws: Aws) -> None:
    version = _register(real, aws)
    service = wiring.registry_service(
        MlSettings(), aws.resources, aws.clients, aws.clock, group=wiring.RANKING_GROUP
    )
    assert isinstance(service.deployer, SageMakerRankingDeployer)

    with pytest.raises(ModelRegistryError, match="fails the skill gate"):
        service.promote(version.version, "try", "t")

    assert aws.sm.list_endpoints()["Endpoints"] == []
    assert aws.sm.list_models()["Models"] == []
    # the model-canary function's promote of cst-rank goes through the same gate
    with pytest.raises(ModelRegistryError, match="fails the skill gate"):
        _deploy(version.version, action="promote")
    assert aws.sm.list_endpoints()["Endpoints"] == []
    assert service.get(version.version).stage is ModelStage.REGISTERED
    # and a version that is not in production is never served
    with pytest.raises(DeploymentError, match="only the production version is served"):
        service.deployer.deploy(service.get(version.version))


def test_the_production_ranking_version_is_served_on_the_stacks_endpoint(
    real: Real, aws: Aws, tmp_path: Path
) -> None:
    # Given the production version of cst-rank in the registry the scan reads
    live = _in_production(aws, _register(real, aws))

    # When the model-canary function deploys it (the ranking endpoint is configured)
    answer = _deploy(live.version)

    # Then the endpoint serves a model of the built-in XGBoost image from the packed booster
    assert answer["endpoint"] == ENDPOINT and answer["deployment"] == "created"
    endpoint = aws.sm.describe_endpoint(EndpointName=ENDPOINT)
    config = aws.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    model = aws.sm.describe_model(ModelName=variant["ModelName"])
    assert model["ModelName"].startswith(f"{ENDPOINT}-v{live.version}-")
    assert model["ExecutionRoleArn"] == ROLE
    container = model["PrimaryContainer"]
    assert container["Image"] == IMAGE
    url = container["ModelDataUrl"]
    assert url == live.artifact_uri.rsplit("/", 1)[0] + "/model.tar.gz"
    bucket, _, key = url.removeprefix("s3://").partition("/")
    tarball = aws.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    (booster,) = _unpack(tarball, tmp_path / "served").iterdir()
    assert booster.read_bytes() == ranking_booster(bundle_artifact(real.folder))
    # and deploying it again changes nothing
    assert _deploy(live.version)["deployment"] == "unchanged"
    assert len(aws.sm.list_models()["Models"]) == 1


def _runtime() -> tuple[Any, Stubber]:
    client = boto3.client(
        "sagemaker-runtime", region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    return client, Stubber(client)


def test_the_scan_scores_the_promoted_model_through_the_endpoint_with_the_containers_answer(
    real: Real, aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the production version deployed on the endpoint the scan is configured with
    live = _in_production(aws, _register(real, aws))
    _deploy(live.version)
    endpoint = aws.sm.describe_endpoint(EndpointName=ENDPOINT)
    config = aws.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = aws.sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    bucket, _, key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").partition("/")
    served_dir = _unpack(
        aws.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), tmp_path / "m"
    )
    # and the runtime expects exactly the scan's request and answers as the container does
    body = encode_rows(_features(real))
    answer = _container_answer(served_dir, body)
    client, stub = _runtime()
    stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(answer), len(answer)), "ContentType": "text/csv"},
        {"EndpointName": ENDPOINT, "ContentType": "text/csv", "Accept": "text/csv", "Body": body},
    )
    monkeypatch.setattr(wiring, "sagemaker_runtime_client", lambda *_: client)

    # When the scan loads the promoted model and ranks the day
    served = wiring.promoted_model(aws.clients, aws.resources, aws.clock)
    assert served is not None and isinstance(served.ranker, SageMakerRanker)
    with stub:
        votes, _ = ranking_scan_votes(served, real.window, real.asof_ms)
    stub.assert_no_pending_responses()

    # Then every coin votes with the probability the in-process evaluator gives
    local, _ = ranking_scan_votes(real.model, real.window, real.asof_ms)
    assert votes.height == local.height > 5
    assert votes["abstain_reason"].null_count() == votes.height
    assert np.allclose(votes["probability"].to_numpy(), local["probability"].to_numpy(), atol=1e-12)
    assert f"scored by SageMaker endpoint {ENDPOINT}" in served.description


def test_an_endpoint_error_makes_the_scans_ranking_abstain_with_the_reason(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the endpoint serves the production version, and its invocation fails
    _deploy(_in_production(aws, _register(real, aws)).version)
    client, stub = _runtime()
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        http_status_code=400,
    )
    monkeypatch.setattr(wiring, "sagemaker_runtime_client", lambda *_: client)

    served = wiring.promoted_model(aws.clients, aws.resources, aws.clock)
    assert served is not None
    with stub:
        votes, quality = ranking_scan_votes(served, real.window, real.asof_ms)

    stub.assert_no_pending_responses()
    assert votes.height > 5 and votes["probability"].null_count() == votes.height
    (reason,) = set(votes["abstain_reason"].to_list())
    assert reason.startswith(f"ranking endpoint {ENDPOINT} failed:")
    assert "not found" in reason
    assert quality.clean.height > 0


def test_deploy_without_a_ranking_endpoint_says_there_is_nothing_to_deploy(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = _in_production(aws, _register(real, aws))
    monkeypatch.delenv("CST_RANKING_ENDPOINT")

    with pytest.raises(Exception, match="no ranking endpoint is configured"):
        _deploy(live.version)
    assert aws.sm.list_endpoints()["Endpoints"] == []


def test_the_ranking_group_takes_only_promote_and_deploy() -> None:
    with pytest.raises(ValueError, match="step of the daily classifier's canary"):
        model_canary.CanaryEvent.model_validate(
            {"action": "evaluate", "group": "cst-rank", "version": 1}
        )
    with pytest.raises(ValueError, match="give group cst-rank"):
        model_canary.CanaryEvent.model_validate({"action": "deploy", "version": 1})


# ---------------------------------------------------------------- the version the endpoint serves
def _abstentions(real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The scan's ranking votes through the endpoint, which must never be invoked."""
    client, stub = _runtime()  # no answer queued: an invocation would raise
    monkeypatch.setattr(wiring, "sagemaker_runtime_client", lambda *_: client)
    served = wiring.promoted_model(aws.clients, aws.resources, aws.clock)
    assert served is not None and isinstance(served.ranker, SageMakerRanker)
    with stub:
        votes, _ = ranking_scan_votes(served, real.window, real.asof_ms)
    assert votes.height > 5 and votes["probability"].null_count() == votes.height
    return set(votes["abstain_reason"].to_list())


def test_the_scan_abstains_while_the_endpoint_serves_another_version_than_production(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _in_production(aws, _register(real, aws))
    assert _deploy(first.version)["deployment"] == "created"
    old = aws.sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    # Given a later version made production without the deployer (a promotion run without
    # CST_RANKING_ENDPOINT, or while the endpoint was switched off)
    registry = wiring.ranking_registry(MlSettings(), aws.resources, aws.clients)
    second = _register(real, aws)
    now = aws.clock.now()
    registry.save(with_stage(first, ModelStage.ARCHIVED, at=now, reason="replaced", actor="t"))
    registry.save(with_stage(second, ModelStage.PRODUCTION, at=now, reason="cli", actor="t"))

    # When the scan ranks through the endpoint, Then every coin abstains saying why
    (reason,) = _abstentions(real, aws, monkeypatch)
    assert reason == (
        f"ranking endpoint {ENDPOINT} serves {old}, not the promoted v{second.version} "
        f"({ranking_version_name(ENDPOINT, second.version, registry.artifact(second.version))})"
        ": abstaining until it is redeployed"
    )
    # and once the production version is deployed, the endpoint is the promoted version's
    answer = _deploy(second.version)
    assert answer["deployment"] == "updated" and answer["endpoint_status"] == "Updating"
    assert answer["serving"].startswith("updating: not done until the endpoint is InService")
    served = wiring.promoted_model(aws.clients, aws.resources, aws.clock)
    assert served is not None and isinstance(served.ranker, SageMakerRanker)
    served.ranker.check_serving()  # moto completes the update at once: no error


def test_the_scan_abstains_while_the_endpoint_is_updating_to_the_promoted_version(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sagemaker.models import sagemaker_backends

    live = _in_production(aws, _register(real, aws))
    answer = _deploy(live.version)
    assert answer["deployment"] == "created" and answer["endpoint_status"] == "Creating"
    assert "the scan's ranking abstains until then" in answer["serving"]
    # Given the endpoint on the version's configuration but not in service yet
    backend = sagemaker_backends["123456789012"][REGION]
    backend.endpoints[ENDPOINT].endpoint_status = "Updating"
    config = aws.sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]

    (reason,) = _abstentions(real, aws, monkeypatch)

    assert reason == (
        f"ranking endpoint {ENDPOINT} is Updating, not InService on the promoted "
        f"v{live.version} ({config}): abstaining until it is"
    )
    # and a deployment that finds it already pointed there says what the endpoint says
    repeat = _deploy(live.version)
    assert repeat["deployment"] == "unchanged" and repeat["endpoint_status"] == "Updating"
    backend.endpoints[ENDPOINT].endpoint_status = "InService"
    assert _deploy(live.version)["serving"] == f"v{live.version}"


def test_the_scan_abstains_when_no_endpoint_exists_yet(
    real: Real, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_production(aws, _register(real, aws))

    (reason,) = _abstentions(real, aws, monkeypatch)

    assert reason.startswith(f"ranking endpoint {ENDPOINT} failed: cannot check which version")


def test_the_scan_serves_names_the_deployer_gives(real: Real, aws: Aws) -> None:
    live = _in_production(aws, _register(real, aws))
    _deploy(live.version)
    served = wiring.promoted_model(aws.clients, aws.resources, aws.clock)
    assert served is not None and isinstance(served.ranker, SageMakerRanker)
    endpoint = aws.sm.describe_endpoint(EndpointName=ENDPOINT)
    assert served.ranker.expected_config == endpoint["EndpointConfigName"]


# ------------------------------------------------------------------------------------- names
_DIGEST = "ab" * 32


def test_serving_names_are_refused_rather_than_cut() -> None:
    longest = "e" * RANKING_ENDPOINT_MAX
    assert len(ranking_serving_name(longest, 10**12 - 1, _DIGEST)) == NAME_MAX
    assert ranking_serving_name("cst-rank", 10, _DIGEST) == "cst-rank-v10-abababab"
    with pytest.raises(DeploymentError, match="over SageMaker's 63: name the ranking endpoint"):
        ranking_serving_name(longest + "e", 10**12 - 1, _DIGEST)
    with pytest.raises(DeploymentError, match="over SageMaker's 63"):
        ranking_serving_name("e" * 60, 1, _DIGEST)


def test_the_ranking_endpoint_name_is_capped_so_every_version_name_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from infra.config import DeploymentConfig

    name = "cst-rank-" + "x" * (RANKING_ENDPOINT_MAX - len("cst-rank-"))
    assert DeploymentConfig(ranking_endpoint=name).ranking_endpoint == name
    with pytest.raises(ValidationError, match="at most 40 characters"):
        DeploymentConfig(ranking_endpoint=name + "x")
    monkeypatch.setenv("CST_RANKING_ENDPOINT", name)
    assert MlSettings().ranking_endpoint == name
    monkeypatch.setenv("CST_RANKING_ENDPOINT", name + "x")
    with pytest.raises(ValidationError, match="at most 40 characters"):
        MlSettings()


def _protocol_artifact(version: int) -> bytes:
    # protocol shape of a registry artefact: a rank:* booster whose one leaf differs per version
    booster = {
        "learner": {
            "objective": {"name": "rank:pairwise"},
            "learner_model_param": {"base_score": "[0E0]", "num_feature": "1"},
            "gradient_booster": {"model": {"trees": [{"leaf": float(version)}]}},
        }
    }
    return json.dumps({"ranker": json.dumps(booster)}).encode()


def _production(number: int) -> ModelVersion:
    return ModelVersion.model_construct(
        group="cst-rank", version=number, stage=ModelStage.PRODUCTION,
        artifact_uri=f"s3://{BUCKET}/models/cst-rank/v{number:04d}/model.json",
    )  # fmt: skip


def test_a_too_long_endpoint_name_deploys_nothing(aws: Aws) -> None:
    deployer = SageMakerRankingDeployer(
        aws.sm, s3=aws.clients.s3, artifact=_protocol_artifact,
        endpoint="cst-rank-" + "x" * 51, image_uri=IMAGE, role_arn=ROLE,
    )  # fmt: skip
    with pytest.raises(DeploymentError, match="over SageMaker's 63"):
        deployer.deploy(_production(1))
    assert aws.sm.list_models()["Models"] == []
    assert aws.sm.list_endpoints()["Endpoints"] == []
    assert "Contents" not in aws.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")


def test_the_longest_endpoint_name_serves_each_version_under_its_own_names(aws: Aws) -> None:
    endpoint = "cst-rank-" + "x" * (RANKING_ENDPOINT_MAX - len("cst-rank-"))
    deployer = SageMakerRankingDeployer(
        aws.sm, s3=aws.clients.s3, artifact=_protocol_artifact,
        endpoint=endpoint, image_uri=IMAGE, role_arn=ROLE,
    )  # fmt: skip
    first = deployer.deploy(_production(1))
    second = deployer.deploy(_production(10))
    assert second.action == "updated" and second.model != first.model
    assert second.model == ranking_version_name(endpoint, 10, _protocol_artifact(10))
    served = aws.sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    (variant,) = aws.sm.describe_endpoint_config(EndpointConfigName=served)["ProductionVariants"]
    model = aws.sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/v0010/model.tar.gz")
    assert all(m["ModelName"].startswith(f"{endpoint}-v") for m in aws.sm.list_models()["Models"])


def test_a_warm_scan_checks_the_endpoint_against_the_version_promoted_since(
    real: Real, aws: Aws
) -> None:
    # Given a scan's ranking server (one execution environment) serving v1 on the endpoint
    first = _in_production(aws, _register(real, aws))
    _deploy(first.version)
    served = wiring.promoted_ranking(aws.clients, aws.resources, aws.clock)
    v1 = served.current()
    assert v1 is not None and isinstance(v1.ranker, SageMakerRanker)
    v1.ranker.check_serving()
    # When v2 replaces it in production and is deployed (as a promotion leaves them)
    registry = wiring.ranking_registry(MlSettings(), aws.resources, aws.clients)
    second = _register(real, aws)
    now = aws.clock.now()
    registry.save(with_stage(first, ModelStage.ARCHIVED, at=now, reason="replaced", actor="t"))
    registry.save(with_stage(second, ModelStage.PRODUCTION, at=now, reason="gate", actor="t"))
    assert _deploy(second.version)["deployment"] == "updated"

    # Then the same server's next scan expects v2's configuration, which the endpoint serves
    v2 = served.current()
    assert v2 is not None and isinstance(v2.ranker, SageMakerRanker)
    assert v2.version == f"cst-rank/v{second.version}"
    assert v2.ranker.expected_config == ranking_version_name(
        ENDPOINT, second.version, registry.artifact(second.version)
    )
    v2.ranker.check_serving()  # no error: InService on the promoted version
    # and v1's ranker, which a warm scan kept before, would have abstained
    with pytest.raises(RankerUnavailableError, match=f"not the promoted v{first.version}"):
        v1.ranker.check_serving()
