"""The embedded local AWS state as last saved (``state_dir/snapshot.json``), read-only.

Every `cst` command on the embedded local AWS saves its tables and parameters atomically when
it ends (`cst api serve` after every write), so the last saved snapshot is the state. Reading it
needs neither moto nor the state lock: read-only commands (`cst killswitch status`) answer in a
fraction of a second, also while another command (e.g. `cst api serve`) holds the lock.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptosmarttrader.adapters.local_snapshot import SNAPSHOT_FILE, SnapshotError, read_snapshot

__all__ = ["SavedState", "SavedStateStore"]


def _plain(attr: Mapping[str, Any]) -> Any:
    """One attribute of the snapshot's DynamoDB JSON → Python (numbers as ``Decimal``)."""
    ((kind, inner),) = attr.items()
    if kind == "S":
        return str(inner)
    if kind == "N":
        return Decimal(str(inner))
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "SS":
        return {str(v) for v in inner}
    if kind == "NS":
        return {Decimal(str(v)) for v in inner}
    if kind == "B":
        return base64.b64decode(inner)
    if kind == "BS":
        return {base64.b64decode(v) for v in inner}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r} in the saved state")


@dataclass(frozen=True)
class SavedState:
    tables: Mapping[str, list[dict[str, Any]]]
    parameters: Mapping[str, str]

    @classmethod
    def load(cls, state_dir: Path) -> SavedState | None:
        """The last saved state, or None when nothing was ever saved there. A damaged snapshot
        raises ``SnapshotError`` (as every command on that state would)."""
        path = state_dir / SNAPSHOT_FILE
        data = read_snapshot(path)
        if data is None:
            return None
        try:
            tables = {
                name: [{k: _plain(v) for k, v in item.items()} for item in items]
                for name, items in data["tables"].items()
            }
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise SnapshotError(f"local AWS snapshot {path} has an invalid entry: {exc}") from exc
        return cls(tables, {str(p["name"]): str(p["value"]) for p in data["parameters"]})

    def parameter(self, name: str) -> str | None:
        return self.parameters.get(name)


@dataclass(frozen=True)
class SavedStateStore:
    """The state table of a :class:`SavedState` behind the ``StateStore`` port, read-only."""

    saved: SavedState
    table: str

    def _items(self, pk: str) -> list[dict[str, Any]]:
        return sorted(
            (i for i in self.saved.tables.get(self.table, []) if i.get("pk") == pk),
            key=lambda i: str(i.get("sk", "")),
        )

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        for item in self._items(pk):
            if item.get("sk") == sk:
                return {k: v for k, v in item.items() if k not in {"pk", "sk"}}
        return None

    def query(self, pk: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in i.items() if k != "pk"} for i in self._items(pk)]

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None:
        raise PermissionError("the saved local state is read-only")

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool:
        raise PermissionError("the saved local state is read-only")

    def put_versioned(
        self, pk: str, sk: str, item: Mapping[str, Any], expected_version: int
    ) -> bool:
        raise PermissionError("the saved local state is read-only")
