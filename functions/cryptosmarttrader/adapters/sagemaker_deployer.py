"""Serve a registry version on the serverless SageMaker endpoint (the ``ModelDeployer`` port).

``deploy(version)``:

1. finds the version's model package in the group and refuses it unless SageMaker shows it
   ``Approved`` (the registry approves exactly the production version), then reads the
   package's ``model.tar.gz`` (model, card and the serving code ``code/inference.py`` the
   endpoint runs) and refuses it unless its SHA-256 equals ``cst_tarball_sha256``, recorded in
   the package's metadata at registration: an artefact changed in S3 after registration
   (tampered, replaced) is never served, and the refusal says why;
2. ``CreateModel`` from the package (``ModelPackageName``: SageMaker takes the image and
   ``model.tar.gz`` from the package's inference specification; ``code/inference.py`` inside
   the tarball serves it), run as the SageMaker role;
3. ``CreateEndpointConfig`` with one serverless variant (memory, max concurrency);
4. ``UpdateEndpoint`` to that configuration, or ``CreateEndpoint`` when the endpoint is absent.

Names are derived from the group, the version and a digest of the package ARN, so a retried
or repeated deployment reuses the model and configuration it created before, and redeploying
an earlier version (a rollback) points the endpoint back at that version's configuration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from cryptosmarttrader.domain.model_canary import ModelVersion

__all__ = ["TARBALL_DIGEST_KEY", "Deployment", "DeploymentError", "SageMakerEndpointDeployer"]

TARBALL_DIGEST_KEY: Final = "cst_tarball_sha256"  # model package metadata, set at registration
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK: Final = 1 << 20

SERVERLESS_MEMORY_MB: Final = 2048
SERVERLESS_MAX_CONCURRENCY: Final = 5
VARIANT: Final = "production"
NAME_MAX: Final = 63


class DeploymentError(RuntimeError):
    """The version cannot be served (not approved, unknown); the message says why."""


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    endpoint_config: str
    model: str
    package_arn: str
    action: Literal["created", "updated", "unchanged"]


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in {"ValidationException", "ResourceNotFound"} and (
        "Could not find" in str(error.get("Message", ""))
    )


class SageMakerEndpointDeployer:
    def __init__(
        self,
        sagemaker: Any,
        *,
        s3: Any,
        group: str,
        endpoint: str,
        role_arn: str,
        memory_mb: int = SERVERLESS_MEMORY_MB,
        max_concurrency: int = SERVERLESS_MAX_CONCURRENCY,
    ) -> None:
        self._sm = sagemaker
        self._s3 = s3
        self._group = group
        self._endpoint = endpoint
        self._role = role_arn
        self._memory = memory_mb
        self._concurrency = max_concurrency

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def deploy(self, version: ModelVersion) -> Deployment:
        arn = self._package_arn(version.version)
        package = self._sm.describe_model_package(ModelPackageName=arn)
        status = package.get("ModelApprovalStatus")
        if status != "Approved":
            raise DeploymentError(
                f"{version.label} is {status} in the model registry; only an Approved "
                "(production) version is served"
            )
        self._verify_artifact(version, package)
        digest = hashlib.sha256(arn.encode()).hexdigest()[:8]
        model = f"{self._group}-v{version.version}-{digest}"[:NAME_MAX]
        config = f"{self._endpoint}-v{version.version}-{digest}"[:NAME_MAX]
        self._ensure_model(model, arn)
        self._ensure_config(config, model)
        return Deployment(self._endpoint, config, model, arn, self._point_endpoint(config))

    def _verify_artifact(self, version: ModelVersion, package: dict[str, Any]) -> None:
        expected = (package.get("CustomerMetadataProperties") or {}).get(TARBALL_DIGEST_KEY)
        if not expected or not _SHA256.fullmatch(str(expected)):
            raise DeploymentError(
                f"{version.label} has no SHA-256 of its model artefact recorded at registration "
                f"({TARBALL_DIGEST_KEY}); it cannot be verified and is not served: register it again"
            )
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        url = str(containers[0].get("ModelDataUrl", ""))
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket or not key:
            raise DeploymentError(f"{version.label}: model data URL {url!r} is not an S3 object")
        digest = hashlib.sha256()
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
        except ClientError as exc:
            raise DeploymentError(
                f"{version.label}: model artefact {url} cannot be read to verify it: {exc}"
            ) from exc
        actual = digest.hexdigest()
        if actual != expected:
            raise DeploymentError(
                f"{version.label}: model artefact {url} has SHA-256 {actual[:16]}..., but "
                f"{expected[:16]}... was recorded at registration: it changed after registration "
                "(tampered or replaced) and is not served"
            )

    def _package_arn(self, number: int) -> str:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ModelPackageGroupName": self._group, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._sm.list_model_packages(**kwargs)
            for summary in page["ModelPackageSummaryList"]:
                if int(summary["ModelPackageVersion"]) == number:
                    return str(summary["ModelPackageArn"])
            token = page.get("NextToken")
            if not token:
                raise DeploymentError(f"{self._group} has no model package version {number}")

    def _ensure_model(self, name: str, package_arn: str) -> None:
        try:
            self._sm.describe_model(ModelName=name)
            return
        except ClientError as exc:
            if not _missing(exc):
                raise
        self._sm.create_model(
            ModelName=name,
            ExecutionRoleArn=self._role,
            PrimaryContainer={
                "ModelPackageName": package_arn,
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            },
        )

    def _ensure_config(self, name: str, model: str) -> None:
        try:
            self._sm.describe_endpoint_config(EndpointConfigName=name)
            return
        except ClientError as exc:
            if not _missing(exc):
                raise
        self._sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": model,
                    "ServerlessConfig": {
                        "MemorySizeInMB": self._memory,
                        "MaxConcurrency": self._concurrency,
                    },
                }
            ],
        )

    def _point_endpoint(self, config: str) -> Literal["created", "updated", "unchanged"]:
        try:
            current = self._sm.describe_endpoint(EndpointName=self._endpoint)
        except ClientError as exc:
            if not _missing(exc):
                raise
            self._sm.create_endpoint(EndpointName=self._endpoint, EndpointConfigName=config)
            return "created"
        if current.get("EndpointConfigName") == config:
            return "unchanged"
        self._sm.update_endpoint(EndpointName=self._endpoint, EndpointConfigName=config)
        return "updated"
