"""The dashboard's read routes through the API handler (REST proxy events).

What a view answers runs on the stores' in-memory fakes (``tests/support/api.py``); the views
that read AWS itself stay on moto: the models view (the registry in S3 and DynamoDB) and the
coin view over a lake that fails (S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.types import Price
from tests.fakes import InMemoryOrderLedger
from tests.integration.test_api import (  # noqa: F401 - fixtures
    ENV,
    USER_ARN,
    api_event,
    aws,
    call,
    module_aws,
    state,
)
from tests.support.api import ApiStores, serving

T0 = datetime(2022, 9, 29, 1, 10, tzinfo=UTC)


@pytest.fixture
def dash(aws: AwsClients, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:  # noqa: F811
    monkeypatch.setenv("CST_DATA_DIR", str(data_dir))
    from cryptosmarttrader.handlers import api as module

    module._service.cache_clear()
    module._dashboard.cache_clear()
    yield module
    module._service.cache_clear()
    module._dashboard.cache_clear()


@pytest.fixture
def stores() -> ApiStores:
    return ApiStores()


@pytest.fixture
def views(
    stores: ApiStores, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The API handler serving from ``stores`` (no AWS), with the deployed function's settings."""
    from cryptosmarttrader.handlers import _common

    yield serving(stores, monkeypatch, {**ENV, "CST_DATA_DIR": str(data_dir)})
    _common.reset_caches()


def _report(symbol: str) -> dict[str, object]:
    return {
        "asof": "2022-09-29T00:00:00Z",
        "universe": 33,
        "excluded_by_quality": 0,
        "model_version": "technical-agent",
        "decision_basis": "technical agent only",
        "rows": [
            {
                "rank": 1,
                "symbol": symbol,
                "score": 0.87,
                "confidence": 0.86,
                "action": "buy",
                "client_order_id": "c" * 32,
                "order_status": "NEW",
                "price": 19400.0,
                "reasons": ["6/7 technical signals agree"],
                "votes": [
                    {
                        "agent": "technical",
                        "probability": float("nan"),  # a broken agent output
                        "confidence": 0.86,
                        "abstain_reason": None,
                        "reasons": ["RSI14 54.4"],
                    },
                    {
                        "agent": "sentiment",
                        "probability": None,
                        "confidence": None,
                        "abstain_reason": "no sentiment data",
                        "reasons": [],
                    },
                ],
            }
        ],
    }


def _order(orders: InMemoryOrderLedger, symbol: str) -> InMemoryOrderLedger:
    orders.put_new(
        {
            "client_order_id": "c" * 32,
            "symbol": symbol,
            "side": "buy",
            "intent": "open",
            "strategy": "technical",
            "signal_bar_ms": 1_664_409_600_000,
            "mode": "paper",
            "status": "NEW",
            "quantity": Decimal("0.1"),
            "reference_price": Decimal("19400"),
            "created_at": T0,
        }
    )
    assert orders.update_status("c" * 32, StatusChange(OrderStatus.NEW, OrderStatus.SUBMITTED, T0))
    assert orders.update_status(
        "c" * 32,
        StatusChange(
            OrderStatus.SUBMITTED,
            OrderStatus.FILLED,
            T0.replace(hour=2),
            OrderFacts(filled=Decimal("0.1"), average_price=Price.of("19430"), fee=Decimal("2")),
        ),
    )
    return orders


def test_coin_view_has_bars_decisions_votes_orders_and_features(
    views: ModuleType, stores: ApiStores
) -> None:
    stores.signals.save("2022-09-29", _report("bitcoin"))
    _order(stores.orders, "bitcoin")

    status, body, _ = call(views, api_event("GET", "/api/v1/coins/bitcoin", query={"days": "30"}))

    assert status == 200, body
    assert len(body["bars"]) >= 28  # real recorded daily bars of the window
    assert all(b["c"] > 0 for b in body["bars"])
    (decision,) = body["decisions"]
    assert decision["action"] == "buy"
    assert decision["votes"][0]["probability"] is None  # NaN never reaches JSON
    assert decision["votes"][1]["abstain_reason"] == "no sentiment data"
    (order,) = body["orders"]
    assert [h["status"] for h in order["history"]] == ["NEW", "SUBMITTED", "FILLED"]
    assert order["slippage_bps"] == pytest.approx((19430 / 19400 - 1) * 10_000)
    assert body["feature_columns"][:2] == ["t", "ret_1d"]
    assert len(body["features"]) >= 28 and body["features"][-1][3] is not None


def test_coin_view_validates_its_parameters_and_names_an_unknown_coin(
    views: ModuleType,
) -> None:
    status, body, _ = call(views, api_event("GET", "/api/v1/coins/not-a-coin"))
    assert (status, body["message"]) == (
        404,
        "unknown symbol 'not-a-coin': no bars, decisions, orders or position",
    )
    for path, query in (
        ("/api/v1/coins/BTC%2FUSDT", None),
        ("/api/v1/coins/bitcoin", {"days": "0"}),
        ("/api/v1/coins/bitcoin", {"days": "abc"}),
        ("/api/v1/coins/bitcoin", {"timeframe": "5m"}),
    ):
        assert call(views, api_event("GET", path, query=query))[0] == 422, (path, query)


def test_portfolio_view_builds_the_curve_daily_pnl_drawdown_and_tracking(
    views: ModuleType, stores: ApiStores
) -> None:
    status, empty, _ = call(views, api_event("GET", "/api/v1/portfolio"))
    assert status == 200 and empty["equity"] == [] and "no execution cycle" in empty["equity_note"]

    _order(stores.orders, "bitcoin")
    store = stores.state
    for hour, equity, reference in (
        (1, 100_000, 100_000),
        (2, 99_000, 99_500),
        (3, 99_500, 99_400),
    ):
        at = T0.replace(hour=hour)
        store.put(
            "execution",
            f"equity#{at.isoformat()}",
            {"at": at, "equity": Decimal(equity), "reference": Decimal(reference), "fees": 2},
        )
    store.put("execution", f"equity#{T0.replace(hour=4).isoformat()}", {"at": T0.replace(hour=4)})

    status, body, _ = call(views, api_event("GET", "/api/v1/portfolio"))

    assert status == 200
    assert [p["equity"] for p in body["equity"]] == [100_000, 99_000, 99_500, None]
    assert body["max_drawdown_pct"] == pytest.approx(1.0)
    assert body["daily_pnl"] == [{"day": "2022-09-29", "pnl_usd": -500.0, "pnl_pct": -0.5}]
    assert body["tracking"]["cycles"] == 2
    assert body["fees_usd"] == 2.0
    assert body["orders"][0]["history"][-1]["status"] == "FILLED"


def test_damaged_records_leave_the_portfolio_and_coin_pages_up_and_are_named(
    views: ModuleType, stores: ApiStores
) -> None:
    # Given a filled bitcoin order, a bitcoin order whose fee is not a number, and a position
    # of ethereum whose quantity is not a number
    orders = _order(stores.orders, "bitcoin")
    damaged = {**orders.get("c" * 32), "client_order_id": "d" * 32, "fee": "two dollars"}
    del damaged["history"]
    assert orders.put_new(damaged)
    stores.positions.upsert({"symbol": "ethereum", "quantity": "lots", "cost": 1200}, None)
    # When the portfolio and the bitcoin page are requested
    status, portfolio, _ = call(views, api_event("GET", "/api/v1/portfolio"))
    coin_status, coin, _ = call(views, api_event("GET", "/api/v1/coins/bitcoin"))
    # Then both answer with what can be read: the sound order, its fee alone in the total
    assert (status, coin_status) == (200, 200)
    assert [o["client_order_id"] for o in portfolio["orders"]] == ["c" * 32]
    assert portfolio["fees_usd"] == 2.0 and portfolio["positions"] == []
    assert [o["client_order_id"] for o in coin["orders"]] == ["c" * 32]
    # and the damaged records are named with their key, coin and why (the coin page: its own)
    assert portfolio["unreadable_records"] == [
        "record 'ethereum' of ethereum unreadable: InvalidOperation: "
        "[<class 'decimal.ConversionSyntax'>]",
        f"record '{'d' * 32}' of bitcoin unreadable: InvalidOperation: "
        "[<class 'decimal.ConversionSyntax'>]",
    ]
    assert coin["unreadable_records"] == [portfolio["unreadable_records"][1]]


def test_audit_breakers_golive_and_models_answer_with_what_exists(
    dash: ModuleType,
    aws: AwsClients,  # noqa: F811
) -> None:
    flip = api_event(
        "POST", "/api/v1/killswitch", body={"on": True, "reason": "drill"}, user_arn=USER_ARN
    )
    assert call(dash, flip)[0] == 200
    state(aws).put(
        "ingest#breaker",
        "binance",
        {
            "state": "open",
            "consecutive_failures": 5,
            "opened_at_ms": 1_664_413_800_000,
            "reason": "timeouts",
        },
    )

    audit = call(dash, api_event("GET", "/api/v1/audit", query={"limit": "5"}))[1]
    breakers = call(dash, api_event("GET", "/api/v1/breakers"))[1]["breakers"]
    golive = call(dash, api_event("GET", "/api/v1/golive"))[1]
    models = call(dash, api_event("GET", "/api/v1/models"))[1]

    assert audit["entries"][0]["actor"] == f"iam:{USER_ARN}"
    assert audit["entries"][0]["details"]["reason"] == "drill"
    assert {b["name"] for b in breakers} >= {"daily loss", "drawdown", "ingest binance"}
    assert next(b for b in breakers if b["name"] == "ingest binance")["state"] == "open"
    assert golive["active"] is None and golive["runs"] == []
    assert golive["thresholds"]["max_tracking_error_bps"] == 20.0
    assert models["versions"] == [] and "no model registered" in models["note"]
    assert call(dash, api_event("GET", "/api/v1/audit", query={"limit": "0"}))[0] == 422
    for body in (audit, breakers, golive, models):
        assert "NaN" not in json.dumps(body)


def test_coin_view_answers_503_with_the_reason_when_the_lake_fails(
    dash: ModuleType,
    aws: AwsClients,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a deployment reading candles from the lake, whose bucket cannot be read
    from cryptosmarttrader.handlers import _common

    monkeypatch.setenv("CST_DATA_SOURCE", "ccxt")
    monkeypatch.setenv("CST_LAKE_BUCKET", "cst-lake-missing")
    _common.trading_settings.cache_clear()
    _common.resources.cache_clear()
    try:
        status, body, _ = call(dash, api_event("GET", "/api/v1/coins/bitcoin"))
    finally:
        _common.trading_settings.cache_clear()
        _common.resources.cache_clear()
    # Then the coin view says a dependency is unavailable (503, the lake's error type named),
    # never a 500, and nothing of the bucket or the stack leaks
    assert status == 503, body
    assert body["message"] == "a dependency is unavailable: the lake (LakeError)"
    assert "cst-lake-missing" not in json.dumps(body) and "Traceback" not in json.dumps(body)
