"""Strict JSON for every document the product prints or answers (pure, no I/O).

``json.dumps`` writes ``NaN``, ``Infinity`` and ``-Infinity`` by default: not JSON (RFC 8259),
rejected by strict parsers (browsers' ``JSON.parse``, Go, jq in some modes). A non-finite number
means "unknown" here, so it is written as ``null``; :func:`dumps` then refuses anything
non-finite that is left (``allow_nan=False``), so such a token can never be printed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "finite"]


def finite(value: object) -> Any:
    """A copy of ``value`` (mappings, lists, tuples, sets) with every NaN or ±infinite float or
    Decimal replaced by ``None``; other values unchanged."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [finite(v) for v in value]
    return value


def dumps(value: object, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``, strict: never ``NaN`` / ``Infinity``."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
