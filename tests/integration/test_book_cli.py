"""`cst book check`: the stored orders and positions read through the DynamoDB adapter on the
embedded local AWS, every record the trading cycle cannot read named, a non-zero exit then."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoPositionStore
from cryptosmarttrader.cli import app
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws

runner = CliRunner()
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("CST_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _order(coid: str, symbol: str, **changes: object) -> dict[str, object]:
    return {"client_order_id": coid, "symbol": symbol, "side": "buy", "intent": "open",
            "order_type": "market", "quantity": Decimal("1"), "reference_price": Decimal("100"),
            "strategy": "scan", "signal_bar_ms": 1_709_251_200_000, "status": "FILLED",
            "created_at": T0.isoformat(), "filled": Decimal("1"),
            "average_price": Decimal("100"), "fee": Decimal("0.1"), **changes}  # fmt: skip


def _store(state: Path, *orders: dict[str, object], position: dict[str, object]) -> None:
    with embedded_aws(state, AwsResources(), lake=False) as aws:
        res = aws.resources
        store = DynamoOrderStore(res.orders_table, aws.dynamodb)
        for order in orders:
            assert store.put_new(order)
        DynamoPositionStore(res.positions_table, aws.dynamodb).upsert(position, None)


def test_a_sound_book_is_read_whole_and_the_check_exits_zero(state: Path) -> None:
    # Given one sound filled order and its position
    _store(state, _order("a" * 32, "bitcoin"),
           position={"symbol": "bitcoin", "quantity": Decimal("1"), "cost": Decimal("100")})  # fmt: skip
    # When the operator checks the book
    result = runner.invoke(app, ["book", "check"])
    # Then everything was read, nothing is named, the exit code is 0
    assert result.exit_code == 0, result.output
    assert "read 1 order(s) and 1 position(s); 0 record(s) cannot be read" in result.output


def test_every_unreadable_record_is_named_with_its_coin_and_reason_and_the_check_fails(
    state: Path,
) -> None:
    # Given a sound order, an order whose fill cannot be true, and a position below zero
    _store(
        state,
        _order("a" * 32, "bitcoin"),
        _order("e" * 32, "ethereum", filled=Decimal("1E+100")),
        position={"symbol": "dogecoin", "quantity": Decimal("-1"), "cost": Decimal("0")},
    )
    # When the operator checks the book (JSON)
    result = runner.invoke(app, ["book", "check", "--json"])
    # Then each unreadable record is named (table, key, coin, why) and the exit code is 1
    assert result.exit_code == 1, result.output
    payload = json.loads(result.output)
    assert (payload["orders_read"], payload["positions_read"]) == (1, 0)
    rows = [(r["table"], r["key"], r["symbol"]) for r in payload["unreadable"]]
    assert rows == [("orders", "e" * 32, "ethereum"), ("positions", "dogecoin", "dogecoin")]
    assert "filled 1E+100 exceeds the quantity sent 1" in payload["unreadable"][0]["reason"]
    assert "below zero" in payload["unreadable"][1]["reason"]
    # and the text form says the same, one line per record
    text = runner.invoke(app, ["book", "check"])
    assert text.exit_code == 1
    assert f"orders {'e' * 32} (ethereum): ValueError: filled 1E+100" in text.output
    assert "positions dogecoin (dogecoin):" in text.output
