"""What `cst local up` teaches moto's CloudFormation so the synthesized stack deploys locally
(the CloudFront models are exercised with the dashboard publish in test_web_publish.py)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from cst_devtools.local_deploy import allow_mock_integration_methods

REGION = "us-east-1"


def test_the_cors_preflight_mock_methods_deploy_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the API's shape with CORS on: an OPTIONS method on the root and one on a resource,
    # each a MOCK integration (no IntegrationHttpMethod, no Uri), as CDK synthesizes them
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    preflight = {
        "Type": "MOCK",
        "RequestTemplates": {"application/json": "{ statusCode: 200 }"},
        "IntegrationResponses": [{"StatusCode": "204"}],
    }
    template = {
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "cst"}},
            "Health": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "PathPart": "health",
                },
            },
            "RootOptions": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "HttpMethod": "OPTIONS",
                    "AuthorizationType": "NONE",
                    "ApiKeyRequired": False,
                    "Integration": preflight,
                },
            },
            "HealthOptions": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": {"Ref": "Api"},
                    "ResourceId": {"Ref": "Health"},
                    "HttpMethod": "OPTIONS",
                    "AuthorizationType": "NONE",
                    "ApiKeyRequired": False,
                    "Integration": preflight,
                },
            },
        }
    }
    allow_mock_integration_methods()
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)

        # When the stack is created on moto
        cloudformation.create_stack(StackName="cors", TemplateBody=json.dumps(template))

        # Then it completes, and both preflight methods exist with their MOCK integration
        (stack,) = cloudformation.describe_stacks(StackName="cors")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        apigateway = boto3.client("apigateway", region_name=REGION)
        (api,) = apigateway.get_rest_apis()["items"]
        resources = apigateway.get_resources(restApiId=api["id"])["items"]
        assert {r["path"] for r in resources} == {"/", "/health"}
        for resource in resources:
            method = apigateway.get_method(
                restApiId=api["id"], resourceId=resource["id"], httpMethod="OPTIONS"
            )
            assert method["methodIntegration"]["type"] == "MOCK"
            assert method["apiKeyRequired"] is False


def test_a_stack_with_the_kill_switch_seed_is_complete_when_create_stack_answers() -> None:
    """The seed custom resource runs in-process and CreateStack answers once it has answered,
    so the CLI's first DescribeStacks finds the stack complete (no 5 s poll on a local server)."""

    from cst_devtools.faults import free_port
    from cst_devtools.local_deploy import moto_server

    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    with moto_server(free_port()) as endpoint:
        template = _seed_stack(endpoint, "kill_switch_seed", {"POWERTOOLS_SERVICE_NAME": "seed"})
        cloudformation = boto3.client(
            "cloudformation", endpoint_url=endpoint, region_name=REGION, **credentials
        )
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=REGION, **credentials)

        # When the stack is created
        cloudformation.create_stack(StackName="seeded", TemplateBody=json.dumps(template))

        # Then, as soon as CreateStack has answered, the seed has written the switch (off)
        # and the stack is complete
        (stack,) = cloudformation.describe_stacks(StackName="seeded")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        value = json.loads(ssm.get_parameter(Name="/cst/kill-switch")["Parameter"]["Value"])
        assert (value["on"], value["actor"]) == (False, "cdk")


def test_the_synthesized_template_is_read_as_json_into_what_moto_s_yaml_reader_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml
    from moto.cloudformation.models import Stack
    from moto.cloudformation.utils import yaml_tag_constructor

    from cst_devtools.local_deploy import read_json_templates_as_json
    from infra.app import LOCAL_CONTEXT_KEY
    from tests.infrastructure.conftest import SKIP_BUNDLING, synthesized_template

    # Given the template the local deployment deploys, and moto's own reading of it (YAML)
    path = synthesized_template({**SKIP_BUNDLING, LOCAL_CONTEXT_KEY: "true"}).template_path
    template = path.read_text()
    yaml.add_multi_constructor("", yaml_tag_constructor)
    as_moto_reads_it = yaml.load(template, Loader=yaml.Loader)  # what moto calls
    read_json_templates_as_json()

    # When the local server reads it, with the YAML reader unavailable
    def no_yaml(*args: object, **kwargs: object) -> None:
        raise AssertionError("a JSON template went through the YAML reader")

    monkeypatch.setattr(yaml, "load", no_yaml)
    parsed = Stack.parse_template(template)

    # Then it is the same dict, read without YAML
    assert parsed == as_moto_reads_it
    assert len(parsed["Resources"]) > 100
    # and a YAML template still goes to moto's YAML reader
    monkeypatch.undo()
    assert Stack.parse_template("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n") == {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}
    }


def test_a_slow_custom_resource_never_holds_create_stack_past_the_client_s_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CreateStack waits for the in-process custom resources a bounded time only: a handler
    slower than that completes the stack later (the CLI polls, as on CloudFormation), instead
    of the client timing out, retrying CreateStack and being told the stack already exists."""
    import sys
    import threading
    import time
    import types

    from botocore.config import Config

    from cst_devtools import local_deploy
    from cst_devtools.faults import free_port

    # Given an in-process custom resource whose handler answers only once released, and a
    # client that waits 5 s for an answer (boto3's default is 60 s; the bound here is 0.5 s)
    released = threading.Event()
    module = types.ModuleType("cryptosmarttrader.handlers.slow_seed")

    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        released.wait(60)
        from cryptosmarttrader.handlers import kill_switch_seed

        answer: dict[str, object] = kill_switch_seed.handler(event, context)
        return answer

    module.handler = handler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cryptosmarttrader.handlers.slow_seed", module)
    monkeypatch.setattr(local_deploy, "CREATE_STACK_ANSWER_WAIT_S", 0.5)
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    impatient = Config(read_timeout=5, retries={"max_attempts": 1})
    with local_deploy.moto_server(free_port()) as endpoint:
        template = _seed_stack(endpoint, "slow_seed")
        cloudformation = boto3.client(
            "cloudformation", endpoint_url=endpoint, region_name=REGION, config=impatient,
            **credentials,
        )  # fmt: skip
        try:
            # When the stack is created while the handler has not answered
            cloudformation.create_stack(StackName="slow", TemplateBody=json.dumps(template))
            (stack,) = cloudformation.describe_stacks(StackName="slow")["Stacks"]
            # Then CreateStack answered, the stack still in progress
            assert stack["StackStatus"] == "CREATE_IN_PROGRESS"
        finally:
            released.set()
        # and once the handler answers, the stack completes (the CLI's poll sees it)
        for _ in range(600):
            (stack,) = cloudformation.describe_stacks(StackName="slow")["Stacks"]
            if stack["StackStatus"] != "CREATE_IN_PROGRESS":
                break
            time.sleep(0.05)
        assert stack["StackStatus"] == "CREATE_COMPLETE"


def _seed_stack(
    endpoint: str, handler_module: str, environment: dict[str, str] | None = None
) -> dict[str, object]:
    """A stack of the kill-switch seed custom resource whose function runs
    ``cryptosmarttrader.handlers.<handler_module>.handler`` (its code uploaded to a bucket of
    the server at ``endpoint``)."""
    import zipfile
    from io import BytesIO

    code = BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr(f"cryptosmarttrader/handlers/{handler_module}.py", "# deployed code\n")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="assets")
    s3.put_object(Bucket="assets", Key="seed.zip", Body=code.getvalue())
    role_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": "lambda.amazonaws.com"}}],
    }  # fmt: skip
    function: dict[str, object] = {
        "Code": {"S3Bucket": "assets", "S3Key": "seed.zip"},
        "Handler": f"cryptosmarttrader.handlers.{handler_module}.handler",
        "Role": {"Fn::GetAtt": ["SeedRole", "Arn"]},
        "Runtime": "python3.12",
        "Timeout": 60,
    }
    if environment:
        function["Environment"] = {"Variables": environment}
    return {
        "Resources": {
            "SeedRole": {"Type": "AWS::IAM::Role",
                         "Properties": {"AssumeRolePolicyDocument": role_policy}},
            "SeedFunction": {"Type": "AWS::Lambda::Function", "Properties": function},
            "Seed": {
                "Type": "Custom::KillSwitchSeed",
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["SeedFunction", "Arn"]},
                    "ParameterName": "/cst/kill-switch",
                    "Description": "the kill-switch",
                },
            },
        }
    }  # fmt: skip
