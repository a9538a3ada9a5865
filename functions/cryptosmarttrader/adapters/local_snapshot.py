"""The embedded local AWS's saved state file (``state_dir/snapshot.json``): its name, version and
validated reading. Plain JSON, no AWS library: read-only commands read it without moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SNAPSHOT_FILE", "SNAPSHOT_VERSION", "SnapshotError", "read_snapshot"]

SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_VERSION = 1


class SnapshotError(RuntimeError):
    """The local state snapshot cannot be read; nothing was loaded or overwritten."""


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """Parse and validate the snapshot file, or None if absent. Raises :class:`SnapshotError`."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"cannot read local AWS snapshot {path}: {exc}") from exc
    ok = (
        isinstance(data, dict)
        and data.get("version") == SNAPSHOT_VERSION
        and isinstance(data.get("tables"), dict)
        and isinstance(data.get("parameters"), list)
        and all(isinstance(v, list) for v in data["tables"].values())
        and all(
            isinstance(p, dict) and {"name", "type", "value"} <= p.keys()
            for p in data["parameters"]
        )
    )
    if not ok:
        raise SnapshotError(
            f"local AWS snapshot {path} is not a version-{SNAPSHOT_VERSION} snapshot "
            "(expected keys version, tables, parameters); fix or remove it"
        )
    snapshot: dict[str, Any] = data
    return snapshot
