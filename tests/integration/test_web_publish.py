"""`cst web publish` on moto: the built dashboard into the deployed stack's site bucket.

The stack (a CloudFormation stack on moto whose outputs name the bucket, the distribution, the
API URL and the dashboard URL, as the real stack's do) is read by the same code a user runs; the
build is a directory shaped like Vite's output (``index.html``, ``config.json`` from
``public/``, hashed ``assets/``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from cryptosmarttrader.adapters.web_publish import (
    OUTPUT_API_URL,
    OUTPUT_BUCKET,
    OUTPUT_DISTRIBUTION,
    OUTPUT_URL,
    PublishError,
    plan,
    publish,
    site_target,
)
from cryptosmarttrader.cli import app
from cst_devtools.local_deploy import register_cloudfront_resources

REGION = "us-east-1"
STACK = "CryptoSmartTrader"
API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/"
runner = CliRunner()


def _build(dist: Path, bundle: str) -> Path:
    """A build as `npm run build` leaves it: the page names its hashed bundle."""
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        f'<!doctype html><script type="module" src="/assets/index-{bundle}.js"></script>'
    )
    (dist / "assets" / f"index-{bundle}.js").write_text(f"console.log('{bundle}')")
    (dist / "assets" / f"index-{bundle}.css").write_text("body{}")
    (dist / "config.json").write_text('{"apiBase": ""}')
    return dist


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "site",
                "Comment": "dashboard",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "site",
                            "DomainName": "site.s3.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "site",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "MinTTL": 0,
                },
            }
        )["Distribution"]
        outputs = {
            OUTPUT_BUCKET: {"Value": {"Ref": "Site"}},
            OUTPUT_DISTRIBUTION: {"Value": distribution["Id"]},
            OUTPUT_API_URL: {"Value": API_URL},
            OUTPUT_URL: {"Value": f"https://{distribution['DomainName']}"},
        }
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(
                {
                    "Resources": {"Site": {"Type": "AWS::S3::Bucket"}},
                    "Outputs": outputs,
                }
            ),
        )
        target = site_target(cloudformation, STACK)
        s3.put_bucket_versioning(
            Bucket=target.bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        yield {"s3": s3, "cloudfront": cloudfront, "target": target, "id": distribution["Id"]}


def _objects(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    s3, bucket = aws["s3"], aws["target"].bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k) for k in keys}


def _invalidated(aws: dict[str, Any]) -> list[list[str]]:
    cloudfront = aws["cloudfront"]
    listed = cloudfront.list_invalidations(DistributionId=aws["id"])["InvalidationList"]
    return [
        cloudfront.get_invalidation(DistributionId=aws["id"], Id=i["Id"])["Invalidation"][
            "InvalidationBatch"
        ]["Paths"]["Items"]
        for i in listed.get("Items", [])
    ]


def test_publish_uploads_the_build_typed_with_the_stacks_api_url_and_invalidates(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given a built dashboard and the deployed stack
    dist = _build(tmp_path / "dist", "aaa111")

    # When the user publishes it
    result = runner.invoke(app, ["web", "publish", "--dist", str(dist), "--region", REGION])

    # Then every file is in the site bucket with its content type and caching rule
    assert result.exit_code == 0, result.output
    objects = _objects(aws)
    assert set(objects) == {
        "index.html",
        "config.json",
        "assets/index-aaa111.js",
        "assets/index-aaa111.css",
    }
    assert objects["index.html"]["ContentType"] == "text/html; charset=utf-8"
    assert objects["index.html"]["CacheControl"] == "no-cache"
    assert objects["assets/index-aaa111.js"]["ContentType"] == "text/javascript; charset=utf-8"
    assert objects["assets/index-aaa111.js"]["CacheControl"].endswith("immutable")
    assert objects["assets/index-aaa111.css"]["ContentType"] == "text/css; charset=utf-8"
    # and config.json names the stack's API (not the build's empty local value)
    assert json.loads(objects["config.json"]["Body"].read()) == {"apiBase": API_URL}
    assert objects["config.json"]["CacheControl"] == "no-cache"
    # and the names that do not change between builds are invalidated on the distribution
    assert _invalidated(aws) == [["/", "/index.html", "/config.json"]]
    assert aws["target"].url in result.output


def test_republishing_keeps_the_previous_build_and_deletes_the_ones_before(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given two builds published one after the other
    def publish_build(bundle: str) -> Any:
        dist = _build(tmp_path / bundle, bundle)
        return publish(dist, aws["target"], s3=aws["s3"], cloudfront=aws["cloudfront"])

    publish_build("aaa111")
    second = publish_build("bbb222")

    # Then the new page is served and the previous build's files stay (a page or CDN edge
    # still holding the previous index.html loads everything it names)
    assert b"bbb222" in _objects(aws)["index.html"]["Body"].read()
    assert set(second.kept) == {"assets/index-aaa111.js", "assets/index-aaa111.css"}
    assert second.deleted == ()
    head = aws["s3"].head_object(Bucket=aws["target"].bucket, Key="assets/index-bbb222.js")
    assert head["Metadata"] == {"cst-build": second.build}

    # When a third build is published
    third = publish_build("ccc333")

    # Then the second build is kept, the first is deleted ...
    assert set(_objects(aws)) == {
        "index.html",
        "config.json",
        "assets/index-ccc333.js",
        "assets/index-ccc333.css",
        "assets/index-bbb222.js",
        "assets/index-bbb222.css",
    }
    assert set(third.deleted) == {"assets/index-aaa111.js", "assets/index-aaa111.css"}
    # ... and stays recoverable as an older version in the versioned bucket
    versions = aws["s3"].list_object_versions(Bucket=aws["target"].bucket)
    assert "assets/index-aaa111.js" in {v["Key"] for v in versions["Versions"]}


def test_an_unbuilt_dashboard_is_refused_with_the_command_and_nothing_is_published(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given no build (web/dist without index.html)
    dist = tmp_path / "dist"
    dist.mkdir()

    # When the user publishes
    result = runner.invoke(app, ["web", "publish", "--dist", str(dist), "--region", REGION])

    # Then a one-line error names the command to run, and the bucket and CDN are untouched
    assert result.exit_code == 1
    assert "run `make web`" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _objects(aws) == {}
    assert _invalidated(aws) == []


def test_a_file_of_unknown_type_is_refused_before_any_upload(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given a build with a file whose content type is unknown (nosniff would break it)
    dist = _build(tmp_path / "dist", "aaa111")
    (dist / "assets" / "engine.wasm").write_bytes(b"\0asm")

    # When published, Then it is refused and nothing is uploaded
    with pytest.raises(PublishError, match=r"engine\.wasm: no content type"):
        publish(dist, aws["target"], s3=aws["s3"], cloudfront=aws["cloudfront"])
    assert _objects(aws) == {}


def test_a_stack_without_the_dashboard_outputs_is_refused(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given a stack deployed before the dashboard existed (no site outputs)
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="Older",
        TemplateBody=json.dumps(
            {
                "Resources": {"Site": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {OUTPUT_API_URL: {"Value": API_URL}},
            }
        ),
    )
    dist = _build(tmp_path / "dist", "aaa111")

    # When published to it, or to a stack that does not exist
    older = runner.invoke(
        app, ["web", "publish", "--dist", str(dist), "--stack-name", "Older", "--region", REGION]
    )
    missing = runner.invoke(
        app, ["web", "publish", "--dist", str(dist), "--stack-name", "Nope", "--region", REGION]
    )

    # Then each is a one-line error saying what is missing, and nothing is uploaded
    assert older.exit_code == 1
    assert f"no output {OUTPUT_BUCKET}, {OUTPUT_DISTRIBUTION}" in older.output
    assert missing.exit_code == 1
    assert "cannot read stack 'Nope'" in missing.output
    assert _objects(aws) == {}


class _FailingOn:
    """The S3 client, except that uploading one key fails (a network or permission fault)."""

    def __init__(self, s3: Any, key: str) -> None:
        self._s3, self._key = s3, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] == self._key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")
        return self._s3.put_object(**kwargs)


def test_an_upload_fault_keeps_the_previous_page_whole_and_a_retry_completes(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    # Given a first build served
    publish(
        _build(tmp_path / "first", "aaa111"),
        aws["target"],
        s3=aws["s3"],
        cloudfront=aws["cloudfront"],
    )
    second = _build(tmp_path / "second", "bbb222")

    # When publishing the next build fails on one of its assets
    failing = _FailingOn(aws["s3"], "assets/index-bbb222.js")
    with pytest.raises(PublishError, match=r"could not upload .*index-bbb222\.js.*publish again"):
        publish(second, aws["target"], s3=failing, cloudfront=aws["cloudfront"])

    # Then the served index.html is still the previous one, and every asset it names is there
    objects = _objects(aws)
    assert b"aaa111" in objects["index.html"]["Body"].read()
    assert "assets/index-aaa111.js" in objects
    assert len(_invalidated(aws)) == 1  # only the first publish's
    # and publishing again completes the new build, the first one still kept as the previous
    retried = publish(second, aws["target"], s3=aws["s3"], cloudfront=aws["cloudfront"])
    assert b"bbb222" in _objects(aws)["index.html"]["Body"].read()
    assert set(retried.kept) == {"assets/index-aaa111.js", "assets/index-aaa111.css"}


def test_the_page_is_uploaded_last_after_everything_it_names(tmp_path: Path) -> None:
    dist = _build(tmp_path / "dist", "aaa111")
    keys = [f.key for f in plan(dist, API_URL)]
    assert keys[-2:] == ["config.json", "index.html"]
    assert set(keys[:-2]) == {"assets/index-aaa111.js", "assets/index-aaa111.css"}


def test_the_local_stack_models_the_cdn_so_the_dashboard_publishes_locally(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given moto's CloudFormation taught the CloudFront resource types (as `cst local up`
    # does) and a stack shaped like the dashboard's: a bucket, an origin access control and a
    # distribution reading it, the API's CORS origin and the outputs from their attributes
    register_cloudfront_resources()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    template = {
        "Resources": {
            "Site": {"Type": "AWS::S3::Bucket"},
            "Oac": {
                "Type": "AWS::CloudFront::OriginAccessControl",
                "Properties": {
                    "OriginAccessControlConfig": {
                        "Name": "site-oac",
                        "OriginAccessControlOriginType": "s3",
                        "SigningBehavior": "always",
                        "SigningProtocol": "sigv4",
                    }
                },
            },
            "Cdn": {
                "Type": "AWS::CloudFront::Distribution",
                "Properties": {
                    "DistributionConfig": {
                        "DefaultRootObject": "index.html",
                        "Enabled": True,
                        "DefaultCacheBehavior": {
                            "TargetOriginId": "site",
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": ["GET", "HEAD"],
                        },
                        "Origins": [
                            {
                                "Id": "site",
                                "DomainName": {"Fn::GetAtt": ["Site", "RegionalDomainName"]},
                                "OriginAccessControlId": {"Fn::GetAtt": ["Oac", "Id"]},
                                "S3OriginConfig": {"OriginAccessIdentity": ""},
                            }
                        ],
                    }
                },
            },
            "CorsOrigin": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": "/cst/cors-origin",
                    "Type": "String",
                    "Value": {
                        "Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Cdn", "DomainName"]}]]
                    },
                },
            },
        },
        "Outputs": {
            OUTPUT_BUCKET: {"Value": {"Ref": "Site"}},
            OUTPUT_DISTRIBUTION: {"Value": {"Ref": "Cdn"}},
            OUTPUT_API_URL: {"Value": API_URL},
            OUTPUT_URL: {
                "Value": {"Fn::Join": ["", ["https://", {"Fn::GetAtt": ["Cdn", "DomainName"]}]]}
            },
        },
    }
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudfront = boto3.client("cloudfront", region_name=REGION)

        # When the stack is created and the dashboard published to it
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        target = site_target(cloudformation, STACK)
        s3 = boto3.client("s3", region_name=REGION)
        published = publish(
            _build(tmp_path / "dist", "aaa111"), target, s3=s3, cloudfront=cloudfront
        )

        # Then the distribution exists with its domain and origin access control, and the
        # files and the invalidation land on them
        (distribution,) = cloudfront.list_distributions()["DistributionList"]["Items"]
        assert distribution["Id"] == target.distribution_id
        assert target.url == f"https://{distribution['DomainName']}"
        config = cloudfront.get_distribution_config(Id=target.distribution_id)
        assert config["DistributionConfig"]["DefaultRootObject"] == "index.html"
        (control,) = cloudfront.list_origin_access_controls()["OriginAccessControlList"]["Items"]
        assert control["Name"] == "site-oac"
        ssm = boto3.client("ssm", region_name=REGION)
        cors = ssm.get_parameter(Name="/cst/cors-origin")["Parameter"]["Value"]
        assert cors == target.url
        assert "index.html" in published.uploaded
        assert {o["Key"] for o in s3.list_objects_v2(Bucket=target.bucket)["Contents"]} >= {
            "index.html",
            "config.json",
        }
