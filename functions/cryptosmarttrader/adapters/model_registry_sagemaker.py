"""SageMaker Model Registry implementation of the ``ModelRegistry`` port.

A version is a model package in the group (``CreateModelPackage`` numbers them 1, 2, ...):

* ``InferenceSpecification``: the XGBoost serving image and ``model.tar.gz`` (``model.json``,
  ``card.json`` and ``code/inference.py``, the serving script that loads both — the endpoint's
  ``SAGEMAKER_SUBMIT_DIRECTORY`` is ``/opt/ml/model/code``), CSV in and out;
* ``ModelMetrics.ModelQuality.Statistics``: the walk-forward metrics JSON (per fold + pooled);
* ``MetadataProperties.CommitId``: the git commit; ``CustomerMetadataProperties``: the stage,
  canary capital share, drift flags, train end, feature hash, the S3 folder of the card,
  reference and state, and ``cst_tarball_sha256`` — the SHA-256 of ``model.tar.gz`` (model and
  serving code) computed at registration, which the deployer checks before serving it;
* ``ModelApprovalStatus``: ``Approved`` only for the production stage, ``Rejected`` for rejected
  and archived versions, ``PendingManualApproval`` otherwise — so SageMaker's own tooling (and
  any deployment rule keyed on approval) sees exactly one approved version.

The full state (history of stage changes with reasons) does not fit metadata values (256
characters each), so it is also written to ``state.json`` beside the artifacts; the stage in
the package's metadata is the source of truth when they differ.

``UpdateModelPackage`` is always sent the complete metadata map: real SageMaker merges keys,
moto replaces the map, and a complete map means the same result on both.

SageMaker has no transaction across model packages: :meth:`SageMakerModelRegistry.commit`
checks every version's stage first, then updates them one after the other (the production one
last), and the production pointer is the one package whose stage is ``production``. The
stack's ranking registry, the one the scan serves, is the embedded one (atomic commits).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
from cryptosmarttrader.adapters.sagemaker_deployer import (
    TARBALL_DIGEST_KEY,
)
from cryptosmarttrader.domain.drift import DriftReference
from cryptosmarttrader.domain.model_canary import (
    ModelCard,
    ModelStage,
    ModelVersion,
    ProductionPointer,
    StageChange,
    VersionChange,
)
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.ports import ModelRegistry, RegistryStoreError
from cryptosmarttrader.settings import AwsResources, MlSettings

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from mypy_boto3_s3 import S3Client

__all__ = [
    "SageMakerModelRegistry",
    "approval_status",
    "build_model_registry",
    "metadata_value",
    "model_tarball",
]

MODEL_FILE: Final = "model.json"
CARD_FILE: Final = "card.json"
SERVING_SCRIPT: Final = "code/inference.py"
TARBALL: Final = "model.tar.gz"
META_MAX: Final = 256
# CustomerMetadataProperties values allow letters, spaces, digits and _.:/=+-@ only
_META_UNSAFE: Final = re.compile(r"[^\w\s.:/=+\-@]")


def metadata_value(text: str) -> str:
    return _META_UNSAFE.sub(" ", text)[:META_MAX]


def approval_status(stage: ModelStage) -> str:
    if stage is ModelStage.PRODUCTION:
        return "Approved"
    if stage in (ModelStage.REJECTED, ModelStage.ARCHIVED):
        return "Rejected"
    return "PendingManualApproval"


def model_tarball(artifact: bytes, card: ModelCard, serving_code: bytes) -> bytes:
    """``model.tar.gz`` as SageMaker extracts it into ``/opt/ml/model`` (deterministic bytes)."""
    buffer = io.BytesIO()
    files = (
        (MODEL_FILE, artifact),
        (CARD_FILE, card.model_dump_json().encode()),
        (SERVING_SCRIPT, serving_code),
    )
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, body in files:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


class SageMakerModelRegistry:
    def __init__(
        self,
        group: str,
        *,
        sagemaker: Any,
        s3: S3Client,
        bucket: str,
        image_uri: str,
        prefix: str = "models",
        serving_code: bytes | None = None,
    ) -> None:
        """``serving_code``: ``ml/inference.py``, packed into every registered ``model.tar.gz``;
        needed to register (not to read or move stages, which the Lambdas do)."""
        self._group = group
        self._serving_code = serving_code
        self._sm = sagemaker
        self._s3 = s3
        self._bucket = bucket
        self._image = image_uri
        self._prefix = prefix.strip("/")

    @property
    def group(self) -> str:
        return self._group

    def ensure_group(self, description: str = "CryptoSmartTrader daily ML agent") -> None:
        try:
            self._sm.describe_model_package_group(ModelPackageGroupName=self._group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in {"ValidationException", "ResourceNotFound"}:
                raise
            self._sm.create_model_package_group(
                ModelPackageGroupName=self._group, ModelPackageGroupDescription=description
            )

    # ------------------------------------------------------------------ port
    def register(
        self, card: ModelCard, artifact: bytes, reference: DriftReference, at: datetime
    ) -> ModelVersion:
        if self._serving_code is None:
            raise ValueError("registering needs the serving script (ml/inference.py)")
        folder = f"{self._prefix}/{self._group}/{hashlib.sha256(artifact).hexdigest()[:16]}"
        tarball = model_tarball(artifact, card, self._serving_code)
        digest = hashlib.sha256(tarball).hexdigest()
        uris = {
            "tarball": self._put(f"{folder}/{TARBALL}", tarball),
            "model": self._put(f"{folder}/{MODEL_FILE}", artifact),
            "card": self._put(f"{folder}/{CARD_FILE}", card.model_dump_json().encode()),
            "reference": self._put(
                f"{folder}/reference.json", reference.model_dump_json().encode()
            ),
            "metrics": self._put(
                f"{folder}/metrics.json",
                json.dumps(
                    {
                        "oos": card.oos.model_dump(mode="json"),
                        "folds": [f.model_dump(mode="json") for f in card.folds],
                    }
                ).encode(),
            ),
        }
        history = (
            StageChange(stage=ModelStage.REGISTERED, at=at, reason="trained", actor="train"),
        )
        arn = self._sm.create_model_package(
            ModelPackageGroupName=self._group,
            ModelPackageDescription=f"{card.target}; train_end {card.train_end}"[:1024],
            InferenceSpecification={
                "Containers": [{"Image": self._image, "ModelDataUrl": uris["tarball"]}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": uris["metrics"]}
                }
            },
            MetadataProperties={"CommitId": card.git_commit[:1024]},
            ModelApprovalStatus=approval_status(ModelStage.REGISTERED),
            CustomerMetadataProperties={
                "cst_folder": folder,
                TARBALL_DIGEST_KEY: digest,
                "cst_train_end": card.train_end.isoformat(),
                "cst_feature_hash": card.feature_hash,
            },
        )["ModelPackageArn"]
        number = int(self._sm.describe_model_package(ModelPackageName=arn)["ModelPackageVersion"])
        version = ModelVersion(
            group=self._group,
            version=number,
            card=card,
            stage=ModelStage.REGISTERED,
            history=history,
            artifact_uri=uris["tarball"],
            # what every server of the version checks the model file it reads against
            artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        )
        return self._write(arn, folder, version, digest)

    def get(self, version: int) -> ModelVersion:
        arn = self._arn(version)
        described = self._sm.describe_model_package(ModelPackageName=arn)
        meta: dict[str, str] = described.get("CustomerMetadataProperties") or {}
        state = ModelVersion.model_validate_json(self._get(f"{meta['cst_folder']}/state.json"))
        stage = ModelStage(meta.get("cst_stage", state.stage))
        return state.model_copy(update={"stage": stage})

    def versions(self) -> list[ModelVersion]:
        return [self.get(n) for n in sorted(self._packages())]

    def save(self, version: ModelVersion) -> ModelVersion:
        arn = self._arn(version.version)
        meta = self._sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
        return self._write(arn, meta["cst_folder"], version, meta.get(TARBALL_DIGEST_KEY))

    def commit(self, changes: Sequence[VersionChange]) -> None:
        for change in changes:
            stored = self.get(change.before.version)
            if stored.stage is not change.before.stage:
                raise RegistryStoreError(
                    f"{stored.label} is {stored.stage}, not {change.before.stage} as read: "
                    "another change won; nothing was written"
                )
        for change in sorted(changes, key=lambda c: c.after.stage is ModelStage.PRODUCTION):
            self.save(change.after)

    def production_pointer(self) -> ProductionPointer | None:
        live = [v for v in self.versions() if v.stage is ModelStage.PRODUCTION]
        if len(live) > 1:
            raise RegistryStoreError(
                f"{len(live)} versions of {self._group} are in production: "
                f"{[v.version for v in live]}"
            )
        return ProductionPointer(live[0].version, live[0].artifact_sha256) if live else None

    def artifact(self, version: int) -> bytes:
        return self._get(f"{self._folder(version)}/{MODEL_FILE}")

    def checked_artifact(self, version: ModelVersion) -> bytes:
        try:
            artifact = self.artifact(version.version)
        except (ClientError, KeyError) as exc:
            raise RegistryStoreError(f"{version.label}: artefact unreadable: {exc}") from exc
        try:
            version.checked_artifact_digest(artifact)
        except DomainError as exc:
            raise RegistryStoreError(str(exc)) from exc
        return artifact

    def reference(self, version: int) -> DriftReference:
        return DriftReference.model_validate_json(
            self._get(f"{self._folder(version)}/reference.json")
        )

    # ------------------------------------------------------------------ helpers
    def _packages(self) -> dict[int, str]:
        found: dict[int, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ModelPackageGroupName": self._group, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._sm.list_model_packages(**kwargs)
            for summary in page["ModelPackageSummaryList"]:
                found[int(summary["ModelPackageVersion"])] = summary["ModelPackageArn"]
            token = page.get("NextToken")
            if not token:
                return found

    def _arn(self, version: int) -> str:
        packages = self._packages()
        if version not in packages:
            raise KeyError(version)
        return packages[version]

    def _folder(self, version: int) -> str:
        meta = self._sm.describe_model_package(ModelPackageName=self._arn(version))
        return str(meta["CustomerMetadataProperties"]["cst_folder"])

    def _write(
        self, arn: str, folder: str, version: ModelVersion, digest: str | None
    ) -> ModelVersion:
        self._put(f"{folder}/state.json", version.model_dump_json().encode())
        last = version.history[-1] if version.history else None
        # the complete map every time (moto replaces it), the registration digest unchanged
        digest_entry = {TARBALL_DIGEST_KEY: digest} if digest else {}
        self._sm.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=approval_status(version.stage),
            ApprovalDescription=(f"{version.stage}: {last.reason}" if last else "")[:1024],
            CustomerMetadataProperties={
                "cst_folder": folder,
                **digest_entry,
                "cst_stage": str(version.stage),
                "cst_capital_fraction": f"{version.capital_fraction:g}",
                "cst_drift_blocked": "true" if version.drift_blocked else "false",
                "cst_drift_reason": metadata_value(version.drift_reason) or "none",
                "cst_train_end": version.card.train_end.isoformat(),
                "cst_feature_hash": version.card.feature_hash,
            },
        )
        return version

    def _put(self, key: str, body: bytes) -> str:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        return f"s3://{self._bucket}/{key}"

    def _get(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()


def build_model_registry(
    settings: MlSettings,
    resources: AwsResources,
    clients: AwsClients,
    serving_code: bytes | None = None,
) -> ModelRegistry:
    """The registry ``settings`` name: embedded (S3 + state table) or SageMaker Model Registry."""
    bucket = settings.model_bucket or resources.lake_bucket
    if settings.model_registry == "embedded":
        return EmbeddedModelRegistry(
            settings.model_group,
            bucket=bucket,
            table=resources.state_table,
            s3=clients.s3,
            dynamodb=clients.dynamodb,
            prefix=settings.model_prefix,
        )
    if not settings.model_image_uri:
        raise ValueError("CST_MODEL_IMAGE_URI is required with CST_MODEL_REGISTRY=sagemaker")
    return SageMakerModelRegistry(
        settings.model_group,
        sagemaker=sagemaker_client(resources),
        s3=clients.s3,
        bucket=bucket,
        image_uri=settings.model_image_uri,
        prefix=settings.model_prefix,
        serving_code=serving_code,
    )


def sagemaker_client(resources: AwsResources) -> Any:
    kwargs: dict[str, Any] = {"region_name": resources.region}
    if resources.aws_endpoint_url:
        kwargs["endpoint_url"] = resources.aws_endpoint_url
    return boto3.client("sagemaker", **kwargs)
