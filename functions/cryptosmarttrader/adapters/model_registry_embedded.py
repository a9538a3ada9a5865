"""Embedded model registry (local runs): artifacts in S3, versions in the DynamoDB state table.

Layout, in the lake bucket (or any bucket) and the state table of the resource contract:

* ``s3://<bucket>/<prefix>/<group>/v<NNNN>/model.json`` (xgboost JSON), ``card.json`` (the
  :class:`ModelCard`), ``reference.json`` (the :class:`DriftReference`);
* state item ``pk = model#<group>``, ``sk = version#<NNNNNN>`` holding the version (card, stage,
  history, capital share, drift flags, the artefact's SHA-256) as JSON.

A version number is claimed with a conditional put before any object is written, so two
concurrent registrations never share a number or overwrite each other's artifacts.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.domain.drift import DriftReference
from cryptosmarttrader.domain.model_canary import ModelCard, ModelStage, ModelVersion, StageChange

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

__all__ = ["EmbeddedModelRegistry", "RegistryStoreError"]

MODEL_FILE: Final = "model.json"
CARD_FILE: Final = "card.json"
REFERENCE_FILE: Final = "reference.json"
MAX_CLAIM_ATTEMPTS: Final = 20


class RegistryStoreError(RuntimeError):
    """An S3 or DynamoDB call of the registry failed; the message names the object."""


class EmbeddedModelRegistry:
    """Implements the ``ModelRegistry`` port over S3 and the DynamoDB state table."""

    def __init__(
        self,
        group: str,
        *,
        bucket: str,
        table: str,
        s3: S3Client,
        dynamodb: DynamoDBClient,
        prefix: str = "models",
    ) -> None:
        self._group = group
        self._bucket = bucket
        self._table = table
        self._s3 = s3
        self._ddb = dynamodb
        self._prefix = prefix.strip("/")

    @property
    def group(self) -> str:
        return self._group

    # ------------------------------------------------------------------ keys
    @property
    def _pk(self) -> str:
        return f"model#{self._group}"

    @staticmethod
    def _sk(version: int) -> str:
        return f"version#{version:06d}"

    def _key(self, version: int, name: str) -> str:
        return f"{self._prefix}/{self._group}/v{version:04d}/{name}"

    # ------------------------------------------------------------------ port
    def register(
        self, card: ModelCard, artifact: bytes, reference: DriftReference, at: datetime
    ) -> ModelVersion:
        latest = max((v.version for v in self.versions()), default=0)
        for number in range(latest + 1, latest + 1 + MAX_CLAIM_ATTEMPTS):
            version = ModelVersion(
                group=self._group,
                version=number,
                card=card,
                stage=ModelStage.REGISTERED,
                history=(
                    StageChange(
                        stage=ModelStage.REGISTERED, at=at, reason="trained", actor="train"
                    ),
                ),
                artifact_uri=f"s3://{self._bucket}/{self._key(number, MODEL_FILE)}",
                artifact_sha256=hashlib.sha256(artifact).hexdigest(),
            )
            if self._put(version, new=True):
                self._put_object(self._key(number, MODEL_FILE), artifact)
                self._put_object(self._key(number, CARD_FILE), card.model_dump_json().encode())
                self._put_object(
                    self._key(number, REFERENCE_FILE), reference.model_dump_json().encode()
                )
                return version
        raise RegistryStoreError(
            f"could not claim a version number for {self._group} after {MAX_CLAIM_ATTEMPTS} tries"
        )

    def get(self, version: int) -> ModelVersion:
        try:
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk}, "sk": {"S": self._sk(version)}},
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise RegistryStoreError(f"get {self._pk}/{self._sk(version)}: {exc}") from exc
        if not item:
            raise KeyError(version)
        return self._parse(item)

    def versions(self) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        try:
            pages = self._ddb.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                ExpressionAttributeValues={":pk": {"S": self._pk}, ":v": {"S": "version#"}},
                ConsistentRead=True,
            )
            for page in pages:
                out.extend(self._parse(i) for i in page["Items"])
        except (ClientError, BotoCoreError) as exc:
            raise RegistryStoreError(f"query {self._pk}: {exc}") from exc
        return sorted(out, key=lambda v: v.version)

    def _parse(self, item: Mapping[str, Any]) -> ModelVersion:
        """One stored version item; a damaged one (no body, not a string, not a version)
        is a :class:`RegistryStoreError` naming the item, never a bare ``KeyError``."""
        sk = item.get("sk", {}).get("S", "?") if isinstance(item.get("sk"), dict) else "?"
        try:
            return ModelVersion.model_validate_json(item["body"]["S"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryStoreError(
                f"damaged registry item {self._pk}/{sk}: {type(exc).__name__}: {exc}"
            ) from exc

    def save(self, version: ModelVersion) -> ModelVersion:
        if version.group != self._group:
            raise ValueError(f"{version.label} does not belong to {self._group}")
        self.get(version.version)  # KeyError for an unknown version
        self._put(version, new=False)
        return version

    def artifact(self, version: int) -> bytes:
        return self._get_object(self._key(version, MODEL_FILE))

    def reference(self, version: int) -> DriftReference:
        return DriftReference.model_validate_json(
            self._get_object(self._key(version, REFERENCE_FILE))
        )

    # ------------------------------------------------------------------ I/O
    def _put(self, version: ModelVersion, *, new: bool) -> bool:
        item = {
            "pk": {"S": self._pk},
            "sk": {"S": self._sk(version.version)},
            "stage": {"S": str(version.stage)},
            "body": {"S": version.model_dump_json()},
        }
        try:
            if new:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            else:
                self._ddb.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            if (
                isinstance(exc, ClientError)
                and exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            ):
                return False
            raise RegistryStoreError(f"put {self._pk}/{item['sk']['S']}: {exc}") from exc
        return True

    def _put_object(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise RegistryStoreError(f"put s3://{self._bucket}/{key}: {exc}") from exc

    def _get_object(self, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise RegistryStoreError(f"get s3://{self._bucket}/{key}: {exc}") from exc
