"""Scan reports in the state table: pk ``signals``, sk ``latest`` and sk ``asof#<iso date>``.

The report is stored as one JSON string attribute (a few KB for a top-20 scan, far below the
400 KB item limit), so its floats round-trip exactly and readers (API, dashboards) get the same
document the scan returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.domain import jsonout

SIGNALS_PK = "signals"
LATEST_SK = "latest"


class DynamoSignalStore:
    def __init__(self, state: DynamoStateStore) -> None:
        self._state = state

    def save(self, asof_iso: str, report: Mapping[str, Any]) -> None:
        body = {"asof": asof_iso, "report_json": jsonout.dumps(report, sort_keys=True)}
        self._state.put(SIGNALS_PK, f"asof#{asof_iso}", body)
        latest = self._state.get(SIGNALS_PK, LATEST_SK)
        if latest is None or str(latest.get("asof", "")) <= asof_iso:
            self._state.put(SIGNALS_PK, LATEST_SK, body)

    def latest(self) -> dict[str, Any] | None:
        item = self._state.get(SIGNALS_PK, LATEST_SK)
        return None if item is None else dict(json.loads(str(item["report_json"])))

    def at(self, asof_iso: str) -> dict[str, Any] | None:
        item = self._state.get(SIGNALS_PK, f"asof#{asof_iso}")
        return None if item is None else dict(json.loads(str(item["report_json"])))

    def between(self, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
        """The reports with ``start_iso <= asof <= end_iso`` (ISO dates), oldest first."""
        items = self._state.query(SIGNALS_PK, sk_between=(f"asof#{start_iso}", f"asof#{end_iso}"))
        return [dict(json.loads(str(item["report_json"]))) for item in items]
