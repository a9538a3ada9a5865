"""A deployment that names the ranking model's SageMaker endpoint gives the scan its name
(``CST_RANKING_ENDPOINT``) and the right to invoke that endpoint only; without one the scan has
neither (it evaluates the registry artefact in process)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.app import CONFIG_CONTEXT_KEY, build
from tests.infrastructure.conftest import SKIP_BUNDLING, Synthesized, cdk_json_context


def _scan_env(template: Template) -> dict[str, Any]:
    functions = template.find_resources(
        "AWS::Lambda::Function",
        {"Properties": {"Handler": "cryptosmarttrader.handlers.scan.handler"}},
    )
    ((_, scan),) = functions.items()
    return dict(scan["Properties"]["Environment"]["Variables"])


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


def test_a_named_ranking_endpoint_is_the_scans_to_invoke_and_nothing_else() -> None:
    context = {
        **cdk_json_context(),
        **SKIP_BUNDLING,
        CONFIG_CONTEXT_KEY: json.dumps({"ranking_endpoint": "cst-rank"}),
    }
    app = App(context=context)
    template = Template.from_stack(build(app))

    assert _scan_env(template)["CST_RANKING_ENDPOINT"] == "cst-rank"
    (statement,) = _invoke_statements(template)
    assert statement["Effect"] == "Allow"
    assert "endpoint/cst-rank" in json.dumps(statement["Resource"])
