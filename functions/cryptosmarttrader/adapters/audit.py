"""The audit trail: one append-only item per state-changing call, in the state table.

Layout: pk ``audit``, sk ``<ISO-8601 UTC time>#<request id>`` (sorts by time; the request id
keeps two calls in the same microsecond apart). Each item records who (``actor``), what
(``action`` and ``details``), when (``at``), the request id and the correlation id. Writes are
conditional on the key being new, so a retried write can never overwrite an earlier entry; free
text (``details``) is sanitized before it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cryptosmarttrader.adapters.dynamodb_store import StoreError, from_item, to_item
from cryptosmarttrader.domain.sanitize import sanitize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["AUDIT_PK", "AuditEntry", "DuplicateAuditEntryError", "DynamoAuditTrail"]

AUDIT_PK = "audit"


class DuplicateAuditEntryError(RuntimeError):
    """An entry with the same time and request id exists: the trail is append-only."""


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str = Field(min_length=1, max_length=512)
    action: str = Field(min_length=1, max_length=128)
    at: AwareDatetime
    request_id: str = Field(min_length=1, max_length=128)
    correlation_id: str | None = Field(default=None, max_length=256)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def sort_key(self) -> str:
        return f"{self.at.isoformat()}#{self.request_id}"


class DynamoAuditTrail:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def record(
        self,
        *,
        actor: str,
        action: str,
        at: datetime,
        request_id: str,
        correlation_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry; raises :class:`DuplicateAuditEntryError` if its key exists."""
        clean = sanitize(dict(details or {}))
        entry = AuditEntry(
            actor=actor,
            action=action,
            at=at,
            request_id=request_id,
            correlation_id=correlation_id,
            details=clean if isinstance(clean, dict) else {},
        )
        item = to_item({**entry.model_dump(mode="json"), "pk": AUDIT_PK, "sk": entry.sort_key})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise DuplicateAuditEntryError(
                    f"audit entry {entry.sort_key} already exists"
                ) from exc
            raise StoreError("put_item(audit)", self._table, {"pk": AUDIT_PK}, exc) from exc
        return entry

    def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be in [1, 1000], got {limit}")
        try:
            resp = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": AUDIT_PK}},
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,
            )
        except ClientError as exc:
            raise StoreError("query(audit)", self._table, {"pk": AUDIT_PK}, exc) from exc
        entries = []
        for raw in resp.get("Items", []):
            data = from_item(raw)
            data.pop("pk", None)
            data.pop("sk", None)
            entries.append(AuditEntry.model_validate(data))
        return entries
