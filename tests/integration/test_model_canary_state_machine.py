"""The model-canary state machine, executed on moto FROM THE SYNTHESIZED DEFINITION, real data.

The ASL is taken from the synthesized template and its ``Fn::GetAtt`` resolved to a function
created in moto; moto's Lambda invoke is patched to call the real handler in-process (without
Docker, moto only echoes the input). The registry is the embedded one (S3 + DynamoDB on moto):
moto models SageMaker's control plane only, and the canary's decision logic is the same over
either registry. Both models are real XGBoost models trained on real bars to 2019-06-30; the
gate scores them on the same out-of-sample rows (2019-07 .. 2019-11, labels matured by asof).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.model_canary import ModelStage
from cryptosmarttrader.handlers import _common, model_canary
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from cst_devtools.moto_shims import invoke_handler_in_process, lambda_zip, resolve
from tests.infrastructure.conftest import SKIP_BUNDLING, synthesized_template
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    cleared,
    trained_models,
    universe,
)

pytestmark = pytest.mark.realdata

REGION = "us-east-1"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True},
                    "lambda": {"use_docker": False}}  # fmt: skip
RESOURCES = {
    "CST_ORDERS_TABLE": "ml-orders",
    "CST_POSITIONS_TABLE": "ml-positions",
    "CST_STATE_TABLE": "ml-state",
    "CST_LAKE_BUCKET": "ml-lake",
    "CST_KILL_SWITCH_PARAM": "/cst/kill-switch",
}
ASOF = "2019-12-05"  # out-of-sample days 2019-07-08 .. 2019-11-05 have matured labels


@dataclass(frozen=True)
class CanaryTemplate:
    definition: Any
    function_id: str
    function: Mapping[str, Any]


@pytest.fixture(scope="module")
def canary_template() -> CanaryTemplate:
    synthesized = synthesized_template(SKIP_BUNDLING)  # shared by the whole run
    (machine,) = [
        r for lid, r in synthesized.resources_of_type("AWS::StepFunctions::StateMachine").items()
        if lid.startswith("MachineLearning")
    ]  # fmt: skip
    ((function_id, function),) = [
        (lid, r["Properties"])
        for lid, r in synthesized.resources_of_type("AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == "cryptosmarttrader.handlers.model_canary.handler"
    ]
    return CanaryTemplate(machine["Properties"]["DefinitionString"], function_id, function)


@dataclass
class Aws:
    sfn: Any
    machine_arn: str
    registry: ModelRegistryService


@pytest.fixture
def aws(
    canary_template: CanaryTemplate, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke_handler_in_process)
    _common.reset_caches()
    model_canary._service.cache_clear()
    with mock_aws(config=MOTO_CONFIG):
        resources = AwsResources.model_validate(
            {k.removeprefix("CST_").lower(): v for k, v in RESOURCES.items()} | {"region": REGION}
        )
        clients = AwsClients.build(resources)
        ensure_resources(clients, datetime(2019, 7, 1, tzinfo=UTC))
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="ml-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        props = canary_template.function
        env = {
            k: (v if isinstance(v, str) else RESOURCES[k])
            for k, v in props["Environment"]["Variables"].items()
            if isinstance(v, str) or k in RESOURCES  # the image URI is a region mapping
        }
        # the local registry and the recorded real data (the template says sagemaker + lake)
        env |= {"CST_MODEL_REGISTRY": "embedded", "CST_DATA_SOURCE": "recorded",
                "CST_DATA_DIR": str(data_dir), "AWS_REGION": REGION}  # fmt: skip
        arn = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="ml-canary-steps",
            Runtime=props["Runtime"],
            Role=role,
            Handler=props["Handler"],
            Code={"ZipFile": lambda_zip()},
            Environment={"Variables": env},
        )["FunctionArn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine_arn = sfn.create_state_machine(
            name="model-canary",
            definition=resolve(canary_template.definition,
                               {f"{canary_template.function_id}.Arn": arn}),
            roleArn=role,
        )["stateMachineArn"]  # fmt: skip
        registry = ModelRegistryService(
            EmbeddedModelRegistry(
                env["CST_MODEL_GROUP"],
                bucket=RESOURCES["CST_LAKE_BUCKET"],
                table=RESOURCES["CST_STATE_TABLE"],
                s3=clients.s3,
                dynamodb=clients.dynamodb,
            ),
            FixedClock(datetime(2019, 7, 1, tzinfo=UTC)),
        )
        yield Aws(sfn, machine_arn, registry)


def _register(aws: Aws, model: TrainedModel, *, clears_gate: bool = True) -> int:
    """Register ``model``; by default with evidence that clears the skill gate (the canary's
    mechanics), else with its own walk-forward evidence (which does not, on this data)."""
    model = cleared(model) if clears_gate else model
    assert isinstance(model.predictor, XgbPredictor)
    card = model.card.model_copy(update={"group": aws.registry.registry.group})
    return aws.registry.register(card, model.predictor.to_bytes(), model.reference).version


def _run(aws: Aws, version: int) -> dict[str, Any]:
    arn = aws.sfn.start_execution(
        stateMachineArn=aws.machine_arn,
        name=f"canary-{uuid.uuid4().hex[:12]}",
        input=json.dumps({"version": version, "asof": ASOF, "shadow_seconds": 0,
                          "canary_seconds": 0}),
    )["executionArn"]  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        described = aws.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.02)  # moto runs the execution on its own thread: look again soon
    raise AssertionError("canary execution still RUNNING after 120 s")


def test_a_candidate_that_beats_the_incumbent_is_promoted_and_the_incumbent_archived(
    aws: Aws,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given the weak two-feature model in production and the full model as candidate
    incumbent = _register(aws, trained_models["weak"])
    aws.registry.promote(incumbent, "bootstrap", "tests")
    candidate = _register(aws, trained_models["full"])
    # When the canary machine runs shadow -> gate -> canary -> gate
    result = _run(aws, candidate)
    # Then it succeeds: the candidate's out-of-sample AUC beat the incumbent's by the margin
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    scores = output["canary_gate"]["scores"]
    assert scores["candidate"]["auc"] >= scores["incumbent"]["auc"] + 0.01
    assert scores["candidate"]["n"] >= 500
    assert output["canary"]["capital_fraction"] == pytest.approx(0.01)
    # and the registry holds the whole path
    promoted = aws.registry.get(candidate)
    assert promoted.stage is ModelStage.PRODUCTION
    assert [h.stage for h in promoted.history] == [
        ModelStage.REGISTERED,
        ModelStage.SHADOW,
        ModelStage.CANARY,
        ModelStage.PRODUCTION,
    ]
    assert aws.registry.get(incumbent).stage is ModelStage.ARCHIVED


def test_a_candidate_that_does_not_beat_the_incumbent_is_rolled_back(
    aws: Aws,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given the full model in production and the weak model as candidate
    incumbent = _register(aws, trained_models["full"])
    aws.registry.promote(incumbent, "bootstrap", "tests")
    candidate = _register(aws, trained_models["weak"])
    # When the canary machine runs
    result = _run(aws, candidate)
    # Then the shadow gate fails, the candidate is rejected with the reason and the incumbent
    # stays in production; the candidate never got capital
    assert result["status"] == "FAILED"
    assert result["error"] == "ModelCanary.RolledBack"
    assert "AUC" in result["cause"]
    rejected = aws.registry.get(candidate)
    assert rejected.stage is ModelStage.REJECTED
    assert ModelStage.CANARY not in [h.stage for h in rejected.history]
    assert rejected.history[-1].reason == result["cause"]
    assert aws.registry.production() == aws.registry.get(incumbent)


def test_a_failing_step_rolls_the_candidate_back(
    aws: Aws,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given a candidate whose drift check raised an alarm
    candidate = aws.registry.get(_register(aws, trained_models["full"]))
    aws.registry.record_drift(candidate, True, "prediction distribution shifted")
    # When the canary machine runs (no incumbent: the bar would be a random ranking)
    result = _run(aws, candidate.version)
    # Then the drift block alone rolls it back
    assert result["status"] == "FAILED"
    assert "drift alarm blocks promotion" in result["cause"]
    assert aws.registry.get(candidate.version).stage is ModelStage.REJECTED


def test_a_candidate_without_skill_gets_no_canary_capital_and_is_rolled_back(
    aws: Aws,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
) -> None:
    # Given the weak model in production and the full model as candidate with its own real
    # walk-forward evidence, which does not clear the skill gate on this data
    incumbent = _register(aws, trained_models["weak"])
    aws.registry.promote(incumbent, "bootstrap", "tests")
    candidate = _register(aws, trained_models["full"], clears_gate=False)
    # When the canary machine runs (it beats the incumbent at the shadow gate)
    result = _run(aws, candidate)
    # Then the canary step refuses it capital and the machine rolls it back
    assert result["status"] == "FAILED", result
    assert "gets no canary capital: fails the skill gate" in result["cause"]
    rejected = aws.registry.get(candidate)
    assert rejected.stage is ModelStage.REJECTED
    assert ModelStage.CANARY not in [h.stage for h in rejected.history]
    assert aws.registry.production() == aws.registry.get(incumbent)
