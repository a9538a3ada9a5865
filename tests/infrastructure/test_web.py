"""The web dashboard on AWS: private bucket behind CloudFront (OAC, HTTPS, strict CSP) and the
API's CORS for the dashboard's origin only."""

from __future__ import annotations

import json
from typing import Any

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


def test_the_built_files_and_the_api_url_are_deployed(synthesized: Synthesized) -> None:
    deploy = _one(synthesized, "Custom::CDKBucketDeployment")
    assert len(deploy["SourceObjectKeys"]) == 2  # the built files + config.json (API URL)
    assert deploy["DistributionPaths"] == ["/index.html", "/config.json"]


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
