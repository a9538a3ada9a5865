"""A deployment that names the ranking model's SageMaker endpoint gives the scan its name
(``CST_RANKING_ENDPOINT``) and the right to invoke that endpoint only, and gives the function
that promotes (the model-canary function) the right to create and update that endpoint only;
without one the scan has neither (it evaluates the registry artefact in process) and nothing
may create a ranking endpoint. Either synth is cdk-nag clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import CONFIG_CONTEXT_KEY
from tests.infrastructure.conftest import SKIP_BUNDLING, Synthesized, synthesized_with

SCAN = "cryptosmarttrader.handlers.scan.handler"
CANARY = "cryptosmarttrader.handlers.model_canary.handler"
ENDPOINT_WRITES = ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")


def _function(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": handler}}
    )
    ((logical_id, function),) = functions.items()
    return logical_id, function


def _scan_env(template: Template, handler: str = SCAN) -> dict[str, Any]:
    _, function = _function(template, handler)
    return dict(function["Properties"]["Environment"]["Variables"])


def _role_of(template: Template, handler: str) -> str:
    _, function = _function(template, handler)
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def _writers_of(template: Template, endpoint: str) -> set[str]:
    """The roles whose policies may create or update ``endpoint``."""
    roles: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = json.dumps(statement["Action"])
            if any(a in actions for a in ENDPOINT_WRITES) and (
                f"endpoint/{endpoint}" in json.dumps(statement["Resource"])
            ):
                roles.update(r["Ref"] for r in policy["Properties"]["Roles"])
    return roles


@pytest.fixture(scope="module")
def named() -> Synthesized:
    """The app synthesized (cdk-nag included: a finding raises) with a ranking endpoint, once
    per run whichever worker asks first (``synthesized_with``)."""
    return synthesized_with(
        {**SKIP_BUNDLING, CONFIG_CONTEXT_KEY: json.dumps({"ranking_endpoint": "cst-rank"})}
    )


def _invoke_statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker:InvokeEndpoint" in json.dumps(statement["Action"])
    ]


def test_the_default_deployment_scores_the_ranking_model_in_process(
    synthesized: Synthesized,
) -> None:
    assert "CST_RANKING_ENDPOINT" not in _scan_env(synthesized.template)
    assert _invoke_statements(synthesized.template) == []
    # and no function is given the ranking endpoint to deploy, nor the right to create it
    assert "CST_RANKING_ENDPOINT" not in _scan_env(synthesized.template, CANARY)
    assert _writers_of(synthesized.template, "cst-rank") == set()


def test_a_named_ranking_endpoint_is_the_scans_to_invoke_and_nothing_else(
    named: Synthesized,
) -> None:
    template = named.template

    assert _scan_env(template)["CST_RANKING_ENDPOINT"] == "cst-rank"
    (statement,) = _invoke_statements(template)
    assert statement["Effect"] == "Allow"
    assert "endpoint/cst-rank" in json.dumps(statement["Resource"])
    # the scan describes that endpoint (which version it serves, whether it is in service)
    # before scoring through it, and nothing else of SageMaker's
    assert sorted(statement["Action"]) == ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"]
    scan_role = _role_of(template, SCAN)
    scan_sagemaker = [
        st
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": scan_role} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker:" in json.dumps(st["Action"])
    ]
    assert scan_sagemaker == [statement]
    assert json.dumps(statement["Resource"]).count("endpoint/cst-rank") == 1
    assert "*" not in json.dumps(statement["Resource"])


def test_only_the_function_that_promotes_may_create_or_update_the_ranking_endpoint(
    named: Synthesized,
) -> None:
    template = named.template
    env = _scan_env(template, CANARY)

    # The model-canary function deploys the endpoint the scan invokes, with the built-in
    # XGBoost image that loads the ranking booster
    assert env["CST_RANKING_ENDPOINT"] == "cst-rank"
    assert "sagemaker-xgboost:3.0-5" in json.dumps(env["CST_RANKING_IMAGE_URI"])
    assert "CST_MODEL_ROLE_ARN" in env
    # and its role is the only one that may create or update it
    assert _writers_of(template, "cst-rank") == {_role_of(template, CANARY)}
    assert _role_of(template, SCAN) != _role_of(template, CANARY)


def test_the_sagemaker_role_reads_the_packed_ranking_boosters(named: Synthesized) -> None:
    role = named.stack.ml.sagemaker_role.node.default_child
    assert role is not None
    role_id = named.stack.resolve(named.stack.get_logical_id(role))  # type: ignore[arg-type]
    reads = [
        statement
        for policy in named.template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "s3:GetObject"
    ]
    assert "models/cst-rank/*/model.tar.gz" in json.dumps(reads)


def test_the_named_endpoint_synth_is_nag_clean(named: Synthesized) -> None:
    report = json.loads(Path(named.outdir / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []


def _sagemaker_grants(template: Template, name: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the canary role is granted on SageMaker resources of ``name``
    (the name replaced by ``<name>``; CDK may merge statements across names)."""
    role = _role_of(template, CANARY)
    out: set[tuple[str, str]] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                if not action.startswith("sagemaker:"):
                    continue
                for resource in resources if isinstance(resources, list) else [resources]:
                    text = json.dumps(resource)
                    for kind in ("model", "endpoint-config", "endpoint"):
                        for suffix in ("-v*", ""):
                            if f":{kind}/{name}{suffix}" + '"' in text:
                                out.add((action, f"{kind}/<name>{suffix}"))
    return out


def test_the_classifier_and_the_ranking_endpoint_get_the_same_grants_on_their_own_names(
    named: Synthesized,
) -> None:
    classifier = _sagemaker_grants(named.template, "cst-daily-ml")
    ranking = _sagemaker_grants(named.template, "cst-rank")
    assert classifier == ranking == {
        ("sagemaker:CreateModel", "model/<name>-v*"),
        ("sagemaker:DescribeModel", "model/<name>-v*"),
        ("sagemaker:CreateEndpointConfig", "endpoint-config/<name>-v*"),
        ("sagemaker:DescribeEndpointConfig", "endpoint-config/<name>-v*"),
        *(
            (action, resource)
            for action in (
                "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"
            )
            for resource in ("endpoint/<name>", "endpoint-config/<name>-v*")
        ),
    }  # fmt: skip


def test_an_endpoint_grant_is_three_statements_on_the_names_given() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam

    from infra.constructs.ml import MachineLearning

    stack = Stack(App(), "Grants")
    role = iam.Role(stack, "Deployer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    MachineLearning._grant_endpoint(stack, role, "models-v*", "ep")  # type: ignore[arg-type]

    ((_, policy),) = Template.from_stack(stack).find_resources("AWS::IAM::Policy").items()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    resources = [json.dumps(s["Resource"]) for s in statements]
    assert [sorted(s["Action"]) for s in statements] == [
        ["sagemaker:CreateModel", "sagemaker:DescribeModel"],
        ["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig"],
        ["sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
    ]
    assert ":model/models-v*" in resources[0] and ":endpoint-config/ep-v*" in resources[1]
    assert ":endpoint/ep" in resources[2] and ":endpoint-config/ep-v*" in resources[2]
    assert all(s["Effect"] == "Allow" for s in statements)
