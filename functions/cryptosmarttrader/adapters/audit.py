"""The audit trail: one append-only item per state-changing call, in the state table.

Layout: pk ``audit``, sk ``<ISO-8601 UTC time>#<request id>`` (sorts by time; the request id
keeps two calls in the same microsecond apart). Each item records who (``actor``), what
(``action`` and ``details``), when (``at``), the request id and the correlation id. Writes are
conditional on the key being new, so a retried write can never overwrite an earlier entry; free
text (``details``) is sanitized before it is stored.

Entries are validated by pydantic's validator core (``pydantic_core``, the engine of every
pydantic model: same rules, same errors) and the writer needs only DynamoDB's item codec
(``adapters.dynamodb_items``), not the order/position store: the alarm → kill-switch Lambda
writes here and must start without ``pydantic.BaseModel`` (~0.4x ``import boto3`` to import and
build, against a 1.5x budget; ``bench/bench_cold_import.py``).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic_core import SchemaValidator, to_jsonable_python
from pydantic_core import core_schema as cs

from cryptosmarttrader.adapters.dynamodb_items import StoreError, from_item, to_item
from cryptosmarttrader.domain.sanitize import sanitize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "AUDIT_PK",
    "AppendOnlyAuditTrail",
    "AuditEntry",
    "DuplicateAuditEntryError",
    "DynamoAuditTrail",
]

AUDIT_PK = "audit"


class DuplicateAuditEntryError(RuntimeError):
    """An entry with the same time and request id exists: the trail is append-only."""


_ENTRY: Any = SchemaValidator(
    cs.typed_dict_schema(
        {
            "actor": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=512)),
            "action": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=128)),
            "at": cs.typed_dict_field(cs.datetime_schema(tz_constraint="aware")),
            "request_id": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=128)),
            "correlation_id": cs.typed_dict_field(
                cs.with_default_schema(
                    cs.nullable_schema(cs.str_schema(max_length=256)), default=None
                ),
                required=False,
            ),
            "details": cs.typed_dict_field(
                cs.with_default_schema(
                    cs.dict_schema(cs.str_schema(), cs.any_schema()), default_factory=dict
                ),
                required=False,
            ),
        },
        extra_behavior="forbid",
        cls_name="AuditEntry",
    )
)


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry; build it with :meth:`model_validate` (raises
    ``pydantic_core.ValidationError`` for a value out of its bounds)."""

    actor: str
    action: str
    at: datetime
    request_id: str
    correlation_id: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def model_validate(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(**_ENTRY.validate_python(dict(data)))

    def model_dump(self, *, mode: str = "json") -> dict[str, Any]:
        """The entry as pydantic dumps it in JSON mode (``at`` as ISO-8601 with ``Z``)."""
        if mode != "json":
            raise ValueError(f"only the JSON dump is supported, got mode={mode!r}")
        dumped: dict[str, Any] = to_jsonable_python(dataclasses.asdict(self))
        return dumped

    @property
    def sort_key(self) -> str:
        return f"{self.at.isoformat()}#{self.request_id}"


class AppendOnlyAuditTrail(ABC):
    """The audit trail over a store of items that refuses a key it already holds.

    The one place that shapes what is stored: an entry's ``details`` sanitized, every field
    validated, the item encoded with DynamoDB's codec under ``pk``/``sk``, and read back through
    the same validation. A store only puts and lists items: ``DynamoAuditTrail`` in the state
    table, the tests' in-memory trail in a dict (so it cannot shape entries otherwise).
    """

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
        entry = AuditEntry.model_validate(
            {
                "actor": actor,
                "action": action,
                "at": at,
                "request_id": request_id,
                "correlation_id": correlation_id,
                "details": clean if isinstance(clean, dict) else {},
            }
        )
        item = to_item({**entry.model_dump(mode="json"), "pk": AUDIT_PK, "sk": entry.sort_key})
        if not self._put_new(entry.sort_key, item):
            raise DuplicateAuditEntryError(f"audit entry {entry.sort_key} already exists")
        return entry

    def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be in [1, 1000], got {limit}")
        entries = []
        for raw in self._newest(limit):
            data = from_item(raw)
            data.pop("pk", None)
            data.pop("sk", None)
            entries.append(AuditEntry.model_validate(data))
        return entries

    @abstractmethod
    def _put_new(self, sort_key: str, item: dict[str, AttributeValueTypeDef]) -> bool:
        """Store ``item`` unless one with its key exists; whether it was stored."""

    @abstractmethod
    def _newest(self, limit: int) -> list[Mapping[str, Any]]:
        """The ``limit`` stored items with the greatest sort keys, greatest first."""


class DynamoAuditTrail(AppendOnlyAuditTrail):
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def _put_new(self, sort_key: str, item: dict[str, AttributeValueTypeDef]) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise StoreError("put_item(audit)", self._table, {"pk": AUDIT_PK}, exc) from exc
        return True

    def _newest(self, limit: int) -> list[Mapping[str, Any]]:
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
        return list(resp.get("Items", []))
