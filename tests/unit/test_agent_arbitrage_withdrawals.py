"""The arbitrage agent nets each route's transfer: withdrawal fee, suspended withdrawals or
deposits, minimum withdrawal, and abstains naming the constraint it could not see (hand-written
inputs with known answers)."""

from __future__ import annotations

import polars as pl
import pytest

from cryptosmarttrader.domain.agents.arbitrage import (
    TICKER_SCHEMA,
    WITHDRAWAL_SCHEMA,
    ArbitrageConfig,
    arbitrage_votes,
)
from cryptosmarttrader.domain.market import DAY_MS

T = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS
CHEAP_HOME = pl.DataFrame(
    [("binance", "X", 99.5, 99.5, T - 1_000), ("kucoin", "X", 100.0, 100.0, T - 2_000)],
    schema=TICKER_SCHEMA,
    orient="row",
)
RICH_HOME = pl.DataFrame(
    [("binance", "X", 100.5, 100.5, T - 1_000), ("kucoin", "X", 100.0, 100.0, T - 2_000)],
    schema=TICKER_SCHEMA,
    orient="row",
)


def _w(
    *rows: tuple[str, bool | None, bool | None, float | None, float | None, int],
) -> pl.DataFrame:
    return pl.DataFrame(
        [(ex, "X", we, de, fee, mn, ts) for ex, we, de, fee, mn, ts in rows],
        schema=WITHDRAWAL_SCHEMA,
        orient="row",
    )


OPEN = _w(("binance", True, True, 0.02, 0.1, T - 3_600_000), ("kucoin", True, True, 0.05, 0.1, T))


def _row(tickers: pl.DataFrame, withdrawals: pl.DataFrame | None, why: str | None = None) -> dict:
    votes = arbitrage_votes(["X"], T, tickers, ArbitrageConfig(), withdrawals, why)
    (row,) = votes.iter_rows(named=True)
    return row


def test_without_withdrawal_data_the_vote_says_so_and_its_spread_is_an_upper_bound() -> None:
    row = _row(CHEAP_HOME, None, "no withdrawal history is recorded")
    assert row["abstain_reason"] is None and row["probability"] > 0.5
    assert "withdrawal constraints unknown: no withdrawal history is recorded" in row["reasons"]
    assert "net of taker fees" in row["reasons"][1] and "an upper bound" in row["reasons"][1]


def test_an_open_route_pays_the_withdrawal_fee_in_the_net_and_in_the_vote() -> None:
    # Given binance 0.5 % below kucoin, withdrawals and deposits open, binance charging 0.02 X
    row = _row(CHEAP_HOME, OPEN)
    bare = _row(CHEAP_HOME, None)
    # Then the best route buys binance and sells kucoin net of fees and the 0.02 X transfer
    qty = 1_000.0 / (99.5 * 1.001)
    net = (qty - 0.02) * 100.0 * 0.999 / 1_000.0 - 1
    assert row["abstain_reason"] is None
    assert f"{net * 100:.3f}%" in row["reasons"][1]
    assert "buy binance, sell kucoin" in row["reasons"][1]
    # and the tilt pays the withdrawal fee too: weaker than the taker-fee-only vote
    assert 0.5 < row["probability"] < bare["probability"]
    assert "withdrawal fee" in row["reasons"][0]
    assert not any("unknown" in r for r in row["reasons"])


@pytest.mark.parametrize(
    ("withdrawals", "why"),
    [
        (
            _w(("binance", False, True, 0.02, 0.1, T), ("kucoin", True, True, 0.05, 0.1, T)),
            "binance→kucoin: withdrawals suspended on binance",
        ),
        (
            _w(("binance", True, True, 0.02, 0.1, T), ("kucoin", True, False, 0.05, 0.1, T)),
            "binance→kucoin: deposits suspended on kucoin",
        ),
        (
            _w(("binance", True, True, None, 0.1, T), ("kucoin", True, True, 0.05, 0.1, T)),
            "binance→kucoin: binance reports no withdrawal fee",
        ),
        (
            _w(("binance", True, True, 0.02, 50.0, T), ("kucoin", True, True, 0.05, 0.1, T)),
            "binance→kucoin: below binance's minimum withdrawal 50.0",
        ),
        (
            _w(
                ("binance", True, True, 0.02, 0.1, T - 3 * DAY_MS),
                ("kucoin", True, True, 0.05, 0.1, T),
            ),
            "binance→kucoin: withdrawal data of binance is stale",
        ),
        (
            _w(("binance", True, True, 0.02, 0.1, T)),
            "binance→kucoin: no current deposit data for kucoin",
        ),
        (_w(), "binance→kucoin: no withdrawal data for binance"),
    ],
)
def test_a_blocked_or_unseen_route_out_of_a_cheap_execution_venue_is_an_abstention(
    withdrawals: pl.DataFrame, why: str
) -> None:
    row = _row(CHEAP_HOME, withdrawals)
    assert row["probability"] is None
    assert row["abstain_reason"] == f"no transfer route out of binance is open ({why})"


def test_a_rich_execution_venue_needs_a_route_into_it() -> None:
    # Given binance 0.5 % above kucoin: coins would move kucoin → binance
    suspended = _w(("binance", True, True, 0.02, 0.1, T), ("kucoin", False, True, 0.05, 0.1, T))
    row = _row(RICH_HOME, suspended)
    assert row["abstain_reason"] == (
        "no transfer route into binance is open (kucoin→binance: withdrawals suspended on kucoin)"
    )
    # and with kucoin's withdrawals open at 0.01 X the agent votes bearish for binance
    cheap = _w(("binance", True, True, 0.02, 0.1, T), ("kucoin", True, True, 0.01, 0.1, T))
    voted = _row(RICH_HOME, cheap)
    assert voted["abstain_reason"] is None and voted["probability"] < 0.5
    # while a 0.05 X (0.5 %) withdrawal fee eats the whole 0.5 % deviation: no edge
    eaten = _row(RICH_HOME, OPEN)
    assert eaten["probability"] == pytest.approx(0.5) and eaten["confidence"] == 0.0


def test_constraints_reported_after_the_decision_are_not_seen() -> None:
    later = OPEN.with_columns(ts=pl.lit(T + 1, dtype=pl.Int64))
    row = _row(CHEAP_HOME, later)
    assert row["abstain_reason"] == (
        "no transfer route out of binance is open (binance→kucoin: no withdrawal data for binance)"
    )
