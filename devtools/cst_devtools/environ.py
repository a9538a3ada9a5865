"""Process environment changed for a block and restored after it, whatever the block raised."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator, Mapping


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], unset: Collection[str] = ()) -> Iterator[None]:
    """Set ``values`` and remove ``unset`` from ``os.environ``; the previous values (or their
    absence) come back on exit."""
    saved = {k: os.environ.get(k) for k in (*values, *unset)}
    os.environ.update(values)
    for key in unset:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
