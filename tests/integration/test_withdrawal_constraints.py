"""Withdrawal constraints: ccxt ``fetch_currencies`` → gate → the lake (the in-memory
``WithdrawalStore`` of ``tests/fakes.py``, held to the S3 adapter by ``test_lake_contract.py``)
→ the arbitrage agent as of the decision.

KuCoin's currency structure is the one ccxt returns, recorded in ccxt's static tests
(tests/fixtures/exchanges/kucoin/currencies_btc.json, see the README there); the ccxt client
keeps its real code, only ``fetch_currencies`` serves that recording. The quotes the agent
compares are hand-written (the agent's arithmetic is what is checked, as in its unit tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest

from cryptosmarttrader.adapters.ccxt_agent_feeds import CcxtVenueFeeds
from cryptosmarttrader.domain.agents.arbitrage import (
    TICKER_SCHEMA,
    ArbitrageConfig,
    arbitrage_votes,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import RetryPolicy
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.services.agent_ingest import WithdrawalIngestService
from tests.fakes import InMemoryAgentInputs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "exchanges" / "kucoin"
NOW = datetime(2024, 3, 14, 23, 50, tzinfo=UTC)


class Memory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.items.get((pk, sk))

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None:
        self.items[(pk, sk)] = item


def _kucoin(answer: Any) -> CcxtVenueFeeds:
    client = ccxt.kucoin({"enableRateLimit": True})
    client.rateLimit = 0
    client.fetch_currencies = lambda params={}: answer
    return CcxtVenueFeeds(client, FixedClock(NOW), RetryPolicy(max_attempts=1))


@pytest.fixture
def inputs() -> InMemoryAgentInputs:
    return InMemoryAgentInputs()


def test_recorded_kucoin_currency_becomes_one_constraint_row_on_its_own_chain() -> None:
    recorded = json.loads((FIXTURE / "currencies_btc.json").read_text())

    frame = _kucoin(recorded).withdrawal_constraints(["BTC", "PEPE"])

    # BTC states no currency-level fee: its own chain's (open) fee and minimum are used, not
    # the cheaper KCC chain the receiving venue may not take; PEPE is not reported: unseen
    assert frame.to_dicts() == [
        {
            "exchange": "kucoin",
            "symbol": "BTC",
            "withdraw_enabled": True,
            "deposit_enabled": True,
            "withdraw_fee": 0.0005,
            "withdraw_min": 0.0008,
            "ts": ms_from_utc(NOW),
        }
    ]


def test_ingest_writes_the_gated_constraints_and_the_agent_reads_them_as_of_the_decision(
    inputs: InMemoryAgentInputs,
) -> None:
    recorded = json.loads((FIXTURE / "currencies_btc.json").read_text())
    state = Memory()
    service = WithdrawalIngestService(_kucoin(recorded), inputs, state, FixedClock(NOW))  # type: ignore[arg-type]

    report = service.run("kucoin", ["BTC/USDT", "PEPE/USDT"])
    again = service.run("kucoin", ["BTC/USDT", "PEPE/USDT"])

    assert report.ingested == 1 and report.unseen == ["PEPE"] and report.rejected == {}
    assert again.ingested == 1  # the same observation: merged, not duplicated
    stored = inputs.read_withdrawals("kucoin", NOW - timedelta(days=2), NOW)
    assert stored.height == 1 and stored["withdraw_fee"].to_list() == [0.0005]
    assert state.get("ingest#watermark", "kucoin#withdrawals#all")["last_ts"] == ms_from_utc(NOW)  # type: ignore[index]

    # When the agent decides 10 minutes later, KuCoin 0.5 % cheaper than Binance: closing the
    # gap moves BTC out of KuCoin (open, 0.0005 BTC, minimum 0.0008) into Binance, whose
    # deposit state the lake does not hold (Binance serves currencies to signed clients only)
    asof = ms_from_utc(NOW + timedelta(minutes=10))
    tickers = pl.DataFrame(
        [
            ("binance", "BTC/USDT", 100.5, 100.5, asof - 1_000),
            ("kucoin", "BTC/USDT", 100.0, 100.0, asof),
        ],
        schema=TICKER_SCHEMA,
        orient="row",
    )
    withdrawals = stored.with_columns(symbol=pl.lit("BTC/USDT"))
    votes = arbitrage_votes(["BTC/USDT"], asof, tickers, ArbitrageConfig(), withdrawals)
    (row,) = votes.iter_rows(named=True)
    # Then the agent abstains naming the constraint it could not see, not a guessed fee
    assert row["probability"] is None
    assert row["abstain_reason"] == (
        "no transfer route into binance is open (kucoin→binance: no current deposit data for "
        "binance)"
    )


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [("fee", -0.1, "withdrawal fee -0.1"), ("fee", float("inf"), "withdrawal fee inf")],
)
def test_a_bad_fee_rejects_that_coin_with_the_reason_and_writes_nothing(
    inputs: InMemoryAgentInputs, field: str, value: float, why: str
) -> None:
    broken = json.loads((FIXTURE / "currencies_btc.json").read_text())
    # the recorded payload, one field of the network the row reads broken visibly
    broken["BTC"]["networks"]["BTC"][field] = value

    report = WithdrawalIngestService(_kucoin(broken), inputs, Memory(), FixedClock(NOW)).run(  # type: ignore[arg-type]
        "kucoin", ["BTC/USDT"]
    )

    assert report.ingested == 0
    assert report.rejected["BTC"].startswith(why)
    assert inputs.read_withdrawals("kucoin", NOW - timedelta(days=2), NOW).is_empty()
