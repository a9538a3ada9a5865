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

Names are derived from the group, the version and a digest of the package ARN
(:func:`serving_name`: ``<group>-v<N>-<sha8>``, ``<endpoint>-v<N>-<sha8>``), so a retried
or repeated deployment reuses the model and configuration it created before, and redeploying
an earlier version (a rollback) points the endpoint back at that version's configuration. A
name over SageMaker's 63 characters is refused before anything is created, never cut.

:class:`SageMakerRankingDeployer` serves the ranking model (``cst-rank``, kept in the registry
the scan reads: S3 + the state table, not model packages) on its own serverless endpoint with
SageMaker's built-in XGBoost container, no serving code of ours: at promotion it packs the
version's booster (the registry artefact's ``rank:*`` xgboost JSON, its intercept written the
way the container's XGBoost reads it: :func:`ranking_booster`) as the only file of a
``model.tar.gz``, named ``xgboost-model`` (the container loads every file of
``/opt/ml/model`` as a booster, so nothing else may be in it), writes it beside the artefact,
then creates the model, the serverless configuration and creates or updates the endpoint, named
from the version and the tarball's SHA-256 (:func:`ranking_serving_name`, the name the scan
checks the endpoint serves before scoring through it). ``CreateEndpoint`` and ``UpdateEndpoint``
are asynchronous: a deployment that called them is ``Creating``/``Updating`` (its ``status``),
not done, and an update that fails is rolled back by SageMaker to the earlier configuration;
the scan abstains until the endpoint is ``InService`` on the promoted version's configuration.
The container answers ``text/csv`` rows (an empty
field is a missing value) with the booster's margins, comma-separated, one per row: what
``SageMakerRanker`` sends and reads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from cryptosmarttrader.domain.model_canary import ModelStage, ModelVersion

__all__ = [
    "BOOSTER_FILE",
    "TARBALL_DIGEST_KEY",
    "Deployment",
    "DeploymentError",
    "SageMakerEndpointDeployer",
    "SageMakerRankingDeployer",
    "ranking_booster",
    "ranking_serving_name",
    "ranking_tarball",
    "ranking_version_name",
    "serving_name",
]

TARBALL_DIGEST_KEY: Final = "cst_tarball_sha256"  # model package metadata, set at registration
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_CHUNK: Final = 1 << 20

SERVERLESS_MEMORY_MB: Final = 2048
SERVERLESS_MAX_CONCURRENCY: Final = 5
VARIANT: Final = "production"
NAME_MAX: Final = 63
BOOSTER_FILE: Final = "xgboost-model"  # the name SageMaker's XGBoost container serves
RANKING_TARBALL: Final = "model.tar.gz"
# The longest prefix of a serving name: ``<prefix>-v<N>-<sha8>`` must fit SageMaker's 63
# characters for every version up to 10**12 - 1 (40 + 2 + 12 + 1 + 8 = 63).
SERVING_PREFIX_MAX: Final = 40
RANKING_ENDPOINT_MAX: Final = SERVING_PREFIX_MAX  # the ranking endpoint's name is one
_DIGEST_CHARS: Final = 8


class DeploymentError(RuntimeError):
    """The version cannot be served (not approved, unknown); the message says why."""


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    endpoint_config: str
    model: str
    package_arn: str
    action: Literal["created", "updated", "unchanged"]
    # the endpoint's state after the call: ``Creating``/``Updating`` after CreateEndpoint or
    # UpdateEndpoint (asynchronous: not serving this version yet), else what DescribeEndpoint
    # says (``InService`` once it serves it)
    status: str = "Updating"


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in {"ValidationException", "ResourceNotFound"} and (
        "Could not find" in str(error.get("Message", ""))
    )


def serving_name(prefix: str, version: int, sha256: str, *, what: str) -> str:
    """``<prefix>-v<N>-<sha8>``: the name of a SageMaker model or endpoint configuration serving
    ``version`` (``sha8``: the first 8 hex digits of ``sha256``, the digest of what it serves).
    Both deployers name with it. A name over SageMaker's 63 characters is refused, never cut:
    a cut name could be an earlier version's, and that version's model would be reused. The
    refusal names ``what`` to shorten (a ``prefix`` of at most :data:`SERVING_PREFIX_MAX`
    characters fits every version up to 10**12 - 1)."""
    if not _SHA256.fullmatch(sha256) or version < 1:
        raise DeploymentError(f"no serving name for v{version} of a digest {sha256!r}")
    name = f"{prefix}-v{version}-{sha256[:_DIGEST_CHARS]}"
    if len(name) > NAME_MAX:
        raise DeploymentError(
            f"the serving name {name} of v{version} is {len(name)} characters, over "
            f"SageMaker's {NAME_MAX}: name the {what} with at most {SERVING_PREFIX_MAX} "
            "characters"
        )
    return name


class _ServerlessEndpoint:
    """Endpoint configuration (one serverless variant) and the endpoint pointed at it."""

    _sm: Any
    _endpoint: str
    _memory: int
    _concurrency: int
    last: Deployment | None = None  # the latest deployment this deployer made (its status)

    @property
    def endpoint(self) -> str:
        return self._endpoint

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

    def _point_endpoint(
        self, config: str
    ) -> tuple[Literal["created", "updated", "unchanged"], str]:
        """What was done to point the endpoint at ``config`` and the endpoint's state after it
        (``Creating``/``Updating``: asynchronous, not serving it yet)."""
        try:
            current = self._sm.describe_endpoint(EndpointName=self._endpoint)
        except ClientError as exc:
            if not _missing(exc):
                raise
            self._sm.create_endpoint(EndpointName=self._endpoint, EndpointConfigName=config)
            return "created", "Creating"
        if current.get("EndpointConfigName") == config:
            return "unchanged", str(current.get("EndpointStatus", "unknown"))
        self._sm.update_endpoint(EndpointName=self._endpoint, EndpointConfigName=config)
        return "updated", "Updating"


class SageMakerEndpointDeployer(_ServerlessEndpoint):
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
        digest = hashlib.sha256(arn.encode()).hexdigest()
        model = serving_name(self._group, version.version, digest, what="model package group")
        config = serving_name(self._endpoint, version.version, digest, what="endpoint")
        self._ensure_model(model, arn)
        self._ensure_config(config, model)
        action, status = self._point_endpoint(config)
        self.last = Deployment(self._endpoint, config, model, arn, action, status)
        return self.last

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


# ------------------------------------------------------------------------------ ranking
def ranking_booster(artifact: bytes) -> bytes:
    """The ``rank:*`` booster (xgboost JSON) inside a ranking registry artefact, in the JSON
    the container's XGBoost (3.0.5 in ``sagemaker-xgboost:3.0-5``) reads as the same model:
    xgboost >= 3.1 writes the intercept as a one-element vector (``"[-2.86E-9]"``), which
    3.0.5 does not read (it predicts from its default 0.5 instead), so a single intercept is
    written as the scalar xgboost 3.0 writes; every other field is kept as it is. Refuses
    anything but a single-target ranking booster, with the reason."""
    try:
        doc = json.loads(str(json.loads(artifact)["ranker"]))
        objective = str(doc["learner"]["objective"]["name"])
        if not objective.startswith("rank:"):
            raise DeploymentError(f"not a ranking model: objective {objective}")
        params = doc["learner"]["learner_model_param"]
        intercept = [v for v in str(params["base_score"]).strip("[]").split(",") if v.strip()]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"not a ranking model artefact: {exc!r}") from exc
    if len(intercept) != 1:
        raise DeploymentError(f"a ranking model has one intercept, this one has {len(intercept)}")
    params["base_score"] = intercept[0].strip()
    return json.dumps(doc, separators=(",", ":")).encode()


def ranking_tarball(booster: bytes) -> bytes:
    """``model.tar.gz`` as the built-in XGBoost container serves it: ``xgboost-model`` only
    (deterministic bytes: the same booster gives the same tarball and the same names, at any
    time: the gzip header's timestamp is 0, not the time of packing)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        info = tarfile.TarInfo(BOOSTER_FILE)
        info.size = len(booster)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(booster))
    return buffer.getvalue()


def ranking_serving_name(endpoint: str, version: int, tarball_sha256: str) -> str:
    """``<endpoint>-v<N>-<sha8>``: the model and endpoint configuration serving ``version`` of
    the ranking model (``sha8``: the packed tarball's SHA-256); :func:`serving_name`."""
    return serving_name(endpoint, version, tarball_sha256, what="ranking endpoint")


def ranking_version_name(endpoint: str, version: int, artifact: bytes) -> str:
    """The serving name of ``version`` from its registry artefact, as the deployer names it:
    what the endpoint's configuration must be while it serves that version."""
    tarball = ranking_tarball(ranking_booster(artifact))
    return ranking_serving_name(endpoint, version, hashlib.sha256(tarball).hexdigest())


class SageMakerRankingDeployer(_ServerlessEndpoint):
    """Serves the production ranking version on the ranking endpoint (the ``ModelDeployer``
    port): refuses a version that is not in production or whose artefact is not a ``rank:*``
    booster, then packs it for the built-in XGBoost container (``image_uri``), writes the
    tarball beside the registry artefact (``…/v<NNNN>/model.tar.gz``), and creates the model
    ``<endpoint>-v<N>-<sha8>``, the configuration of the same name and creates or updates the
    endpoint. A retry reuses what it created; a rollback points the endpoint back."""

    def __init__(
        self,
        sagemaker: Any,
        *,
        s3: Any,
        artifact: Callable[[int], bytes],
        endpoint: str,
        image_uri: str,
        role_arn: str,
        memory_mb: int = SERVERLESS_MEMORY_MB,
        max_concurrency: int = SERVERLESS_MAX_CONCURRENCY,
    ) -> None:
        if not image_uri:
            raise ValueError("the ranking endpoint needs the XGBoost image (CST_RANKING_IMAGE_URI)")
        self._sm = sagemaker
        self._s3 = s3
        self._artifact = artifact
        self._endpoint = endpoint
        self._image = image_uri
        self._role = role_arn
        self._memory = memory_mb
        self._concurrency = max_concurrency

    def deploy(self, version: ModelVersion) -> Deployment:
        if version.stage is not ModelStage.PRODUCTION:
            raise DeploymentError(
                f"{version.label} is {version.stage}; only the production version is served"
            )
        url = version.artifact_uri
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket or "/" not in key:
            raise DeploymentError(f"{version.label}: artefact URL {url!r} is not an S3 object")
        tarball = ranking_tarball(ranking_booster(self._artifact(version.version)))
        digest = hashlib.sha256(tarball).hexdigest()
        ranking_serving_name(self._endpoint, version.version, digest)  # refuse before writing
        tar_key = f"{key.rsplit('/', 1)[0]}/{RANKING_TARBALL}"
        try:
            self._s3.put_object(Bucket=bucket, Key=tar_key, Body=tarball)
        except ClientError as exc:
            raise DeploymentError(
                f"{version.label}: cannot write s3://{bucket}/{tar_key}: {exc}"
            ) from exc
        name = ranking_serving_name(self._endpoint, version.version, digest)
        self._ensure_model(name, f"s3://{bucket}/{tar_key}")
        self._ensure_config(name, name)
        action, status = self._point_endpoint(name)
        self.last = Deployment(
            self._endpoint, name, name, f"s3://{bucket}/{tar_key}", action, status
        )
        return self.last

    def _ensure_model(self, name: str, model_data_url: str) -> None:
        try:
            self._sm.describe_model(ModelName=name)
            return
        except ClientError as exc:
            if not _missing(exc):
                raise
        self._sm.create_model(
            ModelName=name,
            ExecutionRoleArn=self._role,
            PrimaryContainer={"Image": self._image, "ModelDataUrl": model_data_url},
        )
