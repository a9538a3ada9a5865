"""The embedded local AWS's saved state file (``state_dir/snapshot.json``): its name, version and
validated reading. Plain JSON, no AWS library: read-only commands read it without moto."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK_FILE",
    "SAVES_EVERY_WRITE_FILE",
    "SNAPSHOT_FILE",
    "SNAPSHOT_VERSION",
    "SnapshotError",
    "read_snapshot",
    "saves_every_write",
    "snapshot_is_current",
]

SNAPSHOT_FILE = "snapshot.json"
SNAPSHOT_VERSION = 1
LOCK_FILE = ".lock"  # held by every command using the embedded local AWS, for its whole run
# written by a holder that saves the snapshot after every write (`cst api serve`), with its pid
SAVES_EVERY_WRITE_FILE = "saves-every-write.json"


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


@contextlib.contextmanager
def saves_every_write(state_dir: Path) -> Iterator[None]:
    """Mark ``state_dir`` as held by this process, which saves the snapshot after every write:
    readers may then trust the snapshot while the lock is held."""
    marker = state_dir / SAVES_EVERY_WRITE_FILE
    marker.write_text(json.dumps({"pid": os.getpid()}), encoding="utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            marker.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def snapshot_is_current(state_dir: Path) -> Iterator[bool]:
    """True while the saved snapshot is the state: nobody holds the state (the lock is taken
    for the read, so no command starts changing it meanwhile), or its holder saves after every
    write. False: another command holds the state and may have changed it since it was saved."""
    lock_path = state_dir / LOCK_FILE
    if not lock_path.exists():
        yield True
        return
    with lock_path.open("a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _holder_saves_every_write(state_dir)
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _holder_saves_every_write(state_dir: Path) -> bool:
    try:
        pid = json.loads((state_dir / SAVES_EVERY_WRITE_FILE).read_text(encoding="utf-8"))["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(pid, int) and _alive(pid)
