"""Embedded model registry (local runs): artifacts in S3, versions in the DynamoDB state table.

Layout, in the lake bucket (or any bucket) and the state table of the resource contract:

* ``s3://<bucket>/<prefix>/<group>/v<NNNN>/model.json`` (xgboost JSON), ``card.json`` (the
  :class:`ModelCard`), ``reference.json`` (the :class:`DriftReference`);
* state item ``pk = model#<group>``, ``sk = version#<NNNNNN>`` holding the version (card, stage,
  history, capital share, drift flags, the artefact's SHA-256) as JSON;
* the production pointer, state item ``pk = model#<group>``, ``sk = pointer#production``:
  ``version`` (0 when no version is in production) and ``artifact_sha256``, the production
  version's digest recorded at registration. A server reads it with one strongly consistent
  ``GetItem`` and reads a version item and its artefact only when it names another version.

A version number is claimed with a conditional put before any object is written, so two
concurrent registrations never share a number or overwrite each other's artifacts.

Stage changes are written by :meth:`EmbeddedModelRegistry.commit`: the changed version items and
the pointer in one ``TransactWriteItems`` (all ``Put``s, so the ``PutItem`` grant covers it),
each version conditioned on its stage being the one read and the pointer on naming the
production version read. A promotion (candidate to production, incumbent archived, pointer
moved) or a rollback is therefore all or nothing, and of two concurrent promotions from the
same production version only one is written; the other is refused and changes nothing.

A registry written before the pointer existed has none: the first read of the pointer finds the
production version by querying the group's version items once, as before, says so in the log,
and writes the pointer (only if still absent), so every later read is one ``GetItem``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.domain.model_canary import (
    ModelCard,
    ModelStage,
    ModelVersion,
    ProductionPointer,
    StageChange,
    VersionChange,
)
from cryptosmarttrader.domain.types import DomainError
from cryptosmarttrader.ports import RegistryStoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from cryptosmarttrader.domain.drift import DriftReference

__all__ = ["POINTER_SK", "EmbeddedModelRegistry", "RegistryConflictError", "RegistryStoreError"]

MODEL_FILE: Final = "model.json"
CARD_FILE: Final = "card.json"
REFERENCE_FILE: Final = "reference.json"
MAX_CLAIM_ATTEMPTS: Final = 20
POINTER_SK: Final = "pointer#production"
_SHA256_HEX: Final = frozenset("0123456789abcdef")

logger = logging.getLogger(__name__)


class RegistryConflictError(RegistryStoreError):
    """A commit refused because a version's stage or the production pointer changed since it
    was read (a concurrent promotion or rollback won): nothing was written."""


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
        stored = self.get(version.version)  # KeyError for an unknown version
        self.commit([VersionChange(stored, version)])
        return version

    def commit(self, changes: Sequence[VersionChange]) -> None:
        if not changes:
            return
        for change in changes:
            if change.after.group != self._group:
                raise ValueError(f"{change.after.label} does not belong to {self._group}")
        leaving = {c.before.version for c in changes if c.before.stage is ModelStage.PRODUCTION}
        entering = [c.after for c in changes if c.after.stage is ModelStage.PRODUCTION]
        if len(entering) > 1:
            raise ValueError(
                f"only one version can be in production: {[v.label for v in entering]}"
            )
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._item(c.after),
                    "ConditionExpression": "#stage = :before",
                    "ExpressionAttributeNames": {"#stage": "stage"},
                    "ExpressionAttributeValues": {":before": {"S": str(c.before.stage)}},
                }
            }
            for c in changes
        ]
        if leaving or entering:
            # the pointer must name what was read as production: migrate an old registry first
            current = self.production_pointer()
            expected = current.version if current is not None else 0
            if expected not in (leaving or {0}):
                named = f"v{expected}" if expected else "no version"
                raise RegistryConflictError(
                    f"{self._pk}: the production pointer names {named}, not "
                    f"{sorted(leaving) or 'no version'} as read: another promotion or rollback "
                    "changed it; nothing was written"
                )
            writes.append(self._pointer_put(entering[0] if entering else None, expected))
        self._transact(writes, changes)

    def production_pointer(self) -> ProductionPointer | None:
        key = {"pk": {"S": self._pk}, "sk": {"S": POINTER_SK}}
        try:
            item = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
                "Item"
            )
        except (ClientError, BotoCoreError) as exc:
            raise RegistryStoreError(f"get {self._pk}/{POINTER_SK}: {exc}") from exc
        if item:
            return self._parse_pointer(item)
        return self._migrate_pointer()

    def artifact(self, version: int) -> bytes:
        return self._get_object(self._key(version, MODEL_FILE))

    def checked_artifact(self, version: ModelVersion) -> bytes:
        if version.group != self._group:
            raise ValueError(f"{version.label} does not belong to {self._group}")
        try:
            artifact = self.artifact(version.version)
        except RegistryStoreError as exc:
            raise RegistryStoreError(f"{version.label}: artefact unreadable: {exc}") from exc
        try:
            version.checked_artifact_digest(artifact)
        except DomainError as exc:  # the artefact was replaced since its registration
            raise RegistryStoreError(str(exc)) from exc
        return artifact

    def reference(self, version: int) -> DriftReference:
        # the drift module (numpy, polars) only when a reference is read: listing, promoting
        # and rolling back versions never read one
        from cryptosmarttrader.domain.drift import DriftReference

        return DriftReference.model_validate_json(
            self._get_object(self._key(version, REFERENCE_FILE))
        )

    # ------------------------------------------------------------------ pointer
    def _pointer_item(self, version: ModelVersion | None) -> dict[str, Any]:
        return {
            "pk": {"S": self._pk},
            "sk": {"S": POINTER_SK},
            "version": {"N": str(version.version if version is not None else 0)},
            "artifact_sha256": {"S": version.artifact_sha256 if version is not None else ""},
        }

    def _pointer_put(self, version: ModelVersion | None, expected: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": self._pointer_item(version),
                "ConditionExpression": "attribute_exists(pk) AND #version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
            }
        }

    def _parse_pointer(self, item: Mapping[str, Any]) -> ProductionPointer | None:
        try:
            number = int(item["version"]["N"])
            digest = item["artifact_sha256"]["S"]
            if number < 0 or not isinstance(digest, str):
                raise ValueError(f"version {number}, digest {digest!r}")
            if digest and (len(digest) != 64 or not set(digest) <= _SHA256_HEX):
                raise ValueError(f"artifact_sha256 {digest[:16]!r}... is not a SHA-256")
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryStoreError(
                f"damaged registry item {self._pk}/{POINTER_SK}: {type(exc).__name__}: {exc}"
            ) from exc
        return ProductionPointer(number, digest) if number else None

    def _migrate_pointer(self) -> ProductionPointer | None:
        """No pointer item: a registry written before it existed (or never promoted). Find the
        production version by querying the version items, once, and write the pointer unless
        another writer did meanwhile (then that one is read)."""
        live = [v for v in self.versions() if v.stage is ModelStage.PRODUCTION]
        if len(live) > 1:
            raise RegistryStoreError(
                f"{self._pk}: {len(live)} versions are in production "
                f"({[v.version for v in live]}) and no production pointer names one"
            )
        version = live[0] if live else None
        logger.warning(
            "model registry %s has no production pointer (written before it existed): "
            "%s found by querying its versions; writing the pointer",
            self._group,
            version.label if version is not None else "no production version",
        )
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=self._pointer_item(version),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return self.production_pointer()  # written meanwhile: that one holds
            raise RegistryStoreError(f"put {self._pk}/{POINTER_SK}: {exc}") from exc
        except BotoCoreError as exc:
            raise RegistryStoreError(f"put {self._pk}/{POINTER_SK}: {exc}") from exc
        return ProductionPointer(version.version, version.artifact_sha256) if version else None

    # ------------------------------------------------------------------ I/O
    def _item(self, version: ModelVersion) -> dict[str, Any]:
        return {
            "pk": {"S": self._pk},
            "sk": {"S": self._sk(version.version)},
            "stage": {"S": str(version.stage)},
            "body": {"S": version.model_dump_json()},
        }

    def _transact(self, writes: list[dict[str, Any]], changes: Sequence[VersionChange]) -> None:
        labels = ", ".join(f"{c.after.label} {c.before.stage}->{c.after.stage}" for c in changes)
        try:
            # the token makes a retry of this request whose answer was lost (the SDK retries a
            # read timeout) succeed as the one applied, within DynamoDB's 10 minutes
            self._ddb.transact_write_items(
                TransactItems=writes,  # type: ignore[arg-type]
                ClientRequestToken=str(uuid.uuid4()),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            reasons = [
                str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])
            ]
            if error.get("Code") == "TransactionCanceledException" and (
                "ConditionalCheckFailed" in reasons
            ):
                if self._written(writes):
                    # this transaction's own earlier attempt was applied and its answer lost:
                    # the retry's conditions saw its writes
                    return
                raise RegistryConflictError(
                    f"{self._pk}: {labels} refused: a version's stage or the production pointer "
                    "changed since it was read (another promotion or rollback won); nothing "
                    "was written"
                ) from exc
            raise RegistryStoreError(
                f"transaction on {self._pk} ({labels}) failed, nothing was written: {exc}"
            ) from exc
        except BotoCoreError as exc:  # no answer: it may or may not have been applied
            if self._written(writes):
                return  # applied: its items hold exactly its writes
            raise RegistryStoreError(
                f"transaction on {self._pk} ({labels}) got no answer, so it was applied whole "
                f"or not at all (re-read the registry): {exc}"
            ) from exc

    def _written(self, writes: list[dict[str, Any]]) -> bool:
        """Whether every item ``writes`` puts is stored exactly as it would put it (each
        version item's body carries this change's own history entry, so another writer's
        change never matches). Unreadable: not known to be written."""
        for write in writes:
            item = write["Put"]["Item"]
            key = {"pk": item["pk"], "sk": item["sk"]}
            try:
                stored = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True)
            except (ClientError, BotoCoreError):
                return False
            if stored.get("Item") != item:
                return False
        return True

    def _put(self, version: ModelVersion, *, new: bool) -> bool:
        item = self._item(version)
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
