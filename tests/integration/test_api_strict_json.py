"""Every API answer is strict JSON: a non-finite number (a report published before the scan
refused them, a damaged record) is answered as null, never as NaN / Infinity."""

from __future__ import annotations

import json
import math
from types import ModuleType

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
from tests.integration import test_api as base
from tests.integration.test_api import REPORT, Context, api_event, state

# the API suite's fixtures: one moto account per module, emptied per test, the handler module
module_aws, aws, api = base.module_aws, base.aws, base.api


def strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_in_a_stored_report_are_answered_as_null(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given a stored scan report whose rows carry NaN and infinite numbers
    rows = [dict(r) for r in REPORT["rows"]]  # type: ignore[union-attr]
    rows[0].update(score=math.nan, price=math.inf)
    rows[1].update(confidence=-math.inf)
    state_store = state(aws)
    body = {"asof": "2024-03-01", "report_json": json.dumps({**REPORT, "rows": rows})}
    for sk in ("asof#2024-03-01", "latest"):
        state_store.put("signals", sk, body)
    assert "NaN" in body["report_json"]
    # When the signals and the overview are requested
    for path in ("/api/v1/signals", "/api/v1/market/overview"):
        result = api.handler(
            api_event("GET", path, query={"asof": "2024-03-01"} if "signals" in path else None),
            Context(),
        )
        # Then the body is strict JSON with null where the number was unknown
        assert result["statusCode"] == 200, result["body"]
        body = strict(result["body"])
        assert isinstance(body, dict)
    signals = strict(
        api.handler(api_event("GET", "/api/v1/signals", query={"asof": "2024-03-01"}), Context())[
            "body"
        ]
    )
    assert isinstance(signals, dict)
    sol = next(s for s in signals["signals"] if s["symbol"] == "SOL")
    assert sol["score"] is None and sol["price"] is None


def test_a_published_report_is_stored_without_non_finite_tokens(aws: AwsClients) -> None:
    # Given a report with a NaN, when published, then the stored JSON is strict
    store = DynamoSignalStore(state(aws))
    store.save("2024-03-01", {**REPORT, "rows": [{**REPORT["rows"][0], "score": math.nan}]})  # type: ignore[index]
    stored = state(aws).get("signals", "asof#2024-03-01")
    assert stored is not None
    strict(str(stored["report_json"]))
