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
