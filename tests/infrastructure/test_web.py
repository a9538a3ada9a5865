"""The web dashboard on AWS: private bucket behind CloudFront (OAC, HTTPS, strict CSP) and the
API's CORS for the dashboard's origin only."""

from __future__ import annotations

import json
from typing import Any

from cryptosmarttrader.adapters.web_publish import (
    OUTPUT_API_URL,
    OUTPUT_BUCKET,
    OUTPUT_DISTRIBUTION,
    OUTPUT_URL,
)
from tests.infrastructure.conftest import Synthesized


def _one(synthesized: Synthesized, cfn_type: str) -> dict[str, Any]:
    found = synthesized.resources_of_type(cfn_type)
    assert len(found) == 1, list(found)
    return next(iter(found.values()))["Properties"]


def test_the_site_bucket_is_private_and_read_by_cloudfront_through_oac(
    synthesized: Synthesized,
) -> None:
    oac = _one(synthesized, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    dist = _one(synthesized, "AWS::CloudFront::Distribution")["DistributionConfig"]
    origin = dist["Origins"][0]
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    behavior = dist["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert dist["DefaultRootObject"] == "index.html"
    assert "Logging" in dist
    site = next(
        r["Properties"]
        for k, r in synthesized.resources_of_type("AWS::S3::Bucket").items()
        if k.startswith("WebSite")
    )
    block = site["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in block)


def test_the_security_headers_allow_only_the_api_origin(synthesized: Synthesized) -> None:
    policy = _one(synthesized, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert "connect-src 'self' https://" in csp and ".execute-api." in csp
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"


def test_the_stack_copies_no_files_and_names_the_site_for_the_publisher(
    synthesized: Synthesized,
) -> None:
    # Given the template
    resources = synthesized.resources

    # Then no custom resource (CDK's BucketDeployment and its Lambda) copies files at deploy
    # time: every function is one of the stack's own handlers
    assert [r["Type"] for r in resources.values() if r["Type"].startswith("Custom::")] == []
    handlers = {
        r["Properties"]["Handler"]
        for r in synthesized.resources_of_type("AWS::Lambda::Function").values()
    }
    assert all(h.startswith("cryptosmarttrader.handlers.") for h in handlers), handlers
    # and the outputs name what `cst web publish` fills: the site bucket, the distribution to
    # invalidate, the API URL for config.json, the dashboard's address
    outputs = synthesized.template.to_json()["Outputs"]
    web = synthesized.stack.web
    assert outputs[OUTPUT_BUCKET]["Value"] == {"Ref": synthesized.logical_id(web.bucket)}
    assert outputs[OUTPUT_DISTRIBUTION]["Value"] == {
        "Ref": synthesized.logical_id(web.distribution)
    }
    assert "execute-api" in json.dumps(outputs[OUTPUT_API_URL]["Value"])
    assert "https://" in json.dumps(outputs[OUTPUT_URL]["Value"])


def test_the_api_allows_the_dashboard_origin_only(synthesized: Synthesized) -> None:
    methods = synthesized.resources_of_type("AWS::ApiGateway::Method")
    options = [
        m["Properties"] for m in methods.values() if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert options, "no CORS preflight methods"
    for method in options:
        assert method["AuthorizationType"] == "NONE"
        assert method.get("ApiKeyRequired") in (None, False)  # browsers send no key on preflight
        headers = method["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        origin = json.dumps(headers["method.response.header.Access-Control-Allow-Origin"])
        assert "WebDistribution" in origin and "*" not in origin
    gateway = synthesized.resources_of_type("AWS::ApiGateway::GatewayResponse")
    assert {g["Properties"]["ResponseType"] for g in gateway.values()} >= {
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    api_fn = next(
        f["Properties"]
        for f in synthesized.resources_of_type("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "cryptosmarttrader.handlers.api.handler"
    )
    assert "WebDistribution" in json.dumps(api_fn["Environment"]["Variables"]["CST_CORS_ORIGIN"])
