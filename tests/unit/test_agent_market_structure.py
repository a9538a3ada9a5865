"""Arbitrage, funding and liquidity agents on tiny hand-written inputs with known answers."""

import polars as pl
import pytest

from cryptosmarttrader.domain.agents.arbitrage import TICKER_SCHEMA, arbitrage_votes
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.funding import FUNDING_SCHEMA, funding_votes
from cryptosmarttrader.domain.agents.liquidity import (
    VETO_PREFIX,
    LiquidityConfig,
    liquidity_votes,
    vetoed,
)
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS, OHLCV_SCHEMA

T = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS
H8 = 8 * 3_600_000


def _tickers(rows: list[tuple[str, str, float, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TICKER_SCHEMA, orient="row")


def _by_symbol(votes: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {r["symbol"]: r for r in votes.iter_rows(named=True)}


# ------------------------------------------------------------------------------ arbitrage


def test_arbitrage_nets_fees_and_votes_for_a_cheap_execution_venue() -> None:
    # Given binance 0.5 % below kraken and kucoin, all fresh
    tickers = _tickers(
        [
            ("binance", "X", 99.5, 99.5, T - 1_000),
            ("kraken", "X", 100.0, 100.0, T - 2_000),
            ("kucoin", "X", 100.0, 100.0, T - 3_000),
        ]
    )
    # When the agent votes for execution on binance
    row = _by_symbol(arbitrage_votes(["X"], T, tickers))["X"]
    # Then the best arbitrage buys binance, sells kucoin (0.1 % fee beats kraken's 0.26 %)
    expected_net = 100.0 * (1 - 0.001) / (99.5 * (1 + 0.001)) - 1
    assert f"{expected_net * 100:.3f}%" in row["reasons"][1]  # type: ignore[index]
    assert "buy binance, sell kucoin" in row["reasons"][1]  # type: ignore[index]
    # And binance is cheap beyond its fee: a bullish tilt
    assert row["probability"] > 0.5  # type: ignore[operator]
    assert row["abstain_reason"] is None


def test_arbitrage_deviation_inside_the_fee_band_is_no_edge() -> None:
    tickers = _tickers([("binance", "X", 99.95, 99.95, T), ("kraken", "X", 100.0, 100.0, T)])
    row = _by_symbol(arbitrage_votes(["X"], T, tickers))["X"]
    assert row["probability"] == pytest.approx(0.5)
    assert row["confidence"] == pytest.approx(0.0)


def test_arbitrage_abstains_on_stale_single_and_missing_venues() -> None:
    # Given: Y quoted by binance only, Z's kraken quote is 2 minutes old, W unquoted,
    # V quoted freshly by kraken and kucoin but not by the execution venue
    tickers = _tickers(
        [
            ("binance", "Y", 1.0, 1.01, T),
            ("binance", "Z", 1.0, 1.01, T),
            ("kraken", "Z", 1.0, 1.01, T - 120_000),
            ("kraken", "V", 1.0, 1.01, T),
            ("kucoin", "V", 1.0, 1.01, T),
        ]
    )
    votes = _by_symbol(arbitrage_votes(["Y", "Z", "W", "V"], T, tickers))
    assert votes["Y"]["abstain_reason"] == "fewer than two venues quote it freshly (1 fresh)"
    assert "kraken stale by 120s" in str(votes["Z"]["abstain_reason"])
    assert votes["W"]["abstain_reason"] == "fewer than two venues quote it freshly (0 fresh)"
    assert votes["V"]["abstain_reason"] == "execution venue binance has no fresh quote"


def test_arbitrage_ignores_quotes_after_asof_and_crossed_books() -> None:
    tickers = _tickers(
        [
            ("binance", "X", 1.0, 1.01, T),
            ("kraken", "X", 1.05, 1.0, T),  # crossed: bid > ask
            ("kucoin", "X", 1.0, 1.01, T + 1),  # after asof
        ]
    )
    row = _by_symbol(arbitrage_votes(["X"], T, tickers))["X"]
    assert "kraken invalid quote" in str(row["abstain_reason"])


# ------------------------------------------------------------------------------ funding


def _funding(symbol: str, rates: list[float], last_ts: int) -> pl.DataFrame:
    n = len(rates)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [last_ts - (n - 1 - i) * H8 for i in range(n)],
            "funding_rate": rates,
        },
        schema=FUNDING_SCHEMA,
    )


def _candles(symbol: str, opens: list[int], closes: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(opens),
            "ts": opens,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1.0] * len(opens),
        },
        schema=OHLCV_SCHEMA,
    )


def test_extreme_positive_funding_and_premium_tilt_bearish() -> None:
    # Given three readings of +0.1 % per 8h (twice the extreme) and a 1 % perp premium
    fund = _funding("BTC", [0.001, 0.001, 0.001], T)
    mark = _candles("BTC", [T - H8], [101.0])  # closes at T
    spot = _candles("BTC", [T - DAY_MS], [100.0])  # daily candle closing at T
    row = _by_symbol(funding_votes(["BTC"], T, fund, mark, spot))["BTC"]
    # Then z = -(0.6·2 + 0.4·2) = -2 (the cap): probability logistic(-2), full confidence
    assert row["probability"] == pytest.approx(1 / (1 + 2.718281828459045**2))
    assert row["confidence"] == pytest.approx(1.0)
    assert "crowded longs" in row["reasons"][0]  # type: ignore[index]


def test_negative_funding_without_basis_is_a_weaker_bullish_vote() -> None:
    fund = _funding("BTC", [-0.0001, -0.0002, -0.0003], T)
    row = _by_symbol(funding_votes(["BTC"], T, fund))["BTC"]
    z = 0.6 * 0.0002 / 0.0005
    assert row["probability"] == pytest.approx(1 / (1 + 2.718281828459045 ** (-z)))
    assert row["confidence"] == pytest.approx(z / 2 * 0.6)  # only the funding signal measured
    assert row["reasons"][1].startswith("basis unavailable")  # type: ignore[index]


def test_incomplete_candles_never_feed_the_basis() -> None:
    # Given a mark candle that opens at T (closes only at T + 8h)
    fund = _funding("BTC", [0.0, 0.0, 0.0], T)
    mark = _candles("BTC", [T], [150.0])
    spot = _candles("BTC", [T - H8 * 2], [100.0])
    row = _by_symbol(funding_votes(["BTC"], T, fund, mark, spot))["BTC"]
    assert row["reasons"][1].startswith("basis unavailable")  # type: ignore[index]


def test_funding_abstains_without_data_stale_or_short() -> None:
    fund = pl.concat([_funding("OLD", [0.0001] * 3, T - 3 * H8), _funding("NEW", [0.0001], T)])
    votes = _by_symbol(funding_votes(["OLD", "NEW", "NONE"], T, fund))
    assert str(votes["OLD"]["abstain_reason"]).startswith("funding is stale")
    assert votes["NEW"]["abstain_reason"] == "only 1 funding reading(s), 3 needed"
    assert votes["NONE"]["abstain_reason"] == "no perpetual funding data for this coin"
    assert funding_votes(["A"], T, None)["abstain_reason"][0] == (
        "no perpetual funding data for this coin"
    )


# ------------------------------------------------------------------------------ liquidity


def _daily(symbol: str, volumes: list[float | None], end: int = T) -> pl.DataFrame:
    n = len(volumes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [end - (n - 1 - i) * DAY_MS for i in range(n)],
            "close": [1.0] * n,
            "volume": volumes,
            "market_cap": [1e8] * n,
        },
        schema=DAILY_SCHEMA,
    )


def test_liquidity_vetoes_thin_unknown_and_oversized_and_passes_liquid() -> None:
    frame = pl.concat(
        [
            _daily("liquid", [5e7] * 30),
            _daily("thin", [2e5] * 30),
            _daily("gappy", [5e7] * 25 + [None] * 5),
            _daily("gone", [5e7] * 30, end=T - DAY_MS),
        ]
    )
    cfg = LiquidityConfig(position_usd=2_000.0)
    votes = liquidity_votes(frame, T, config=cfg)
    reasons = dict(votes.select("symbol", "abstain_reason").iter_rows())
    assert reasons["liquid"].startswith("no directional view: liquid (median 30d volume $50000000")
    assert reasons["thin"] == VETO_PREFIX + "median 30d volume $200000 below the $1000000 floor"
    assert reasons["gappy"] == VETO_PREFIX + "volume unknown on 5 of the last 30 days (max 3)"
    assert reasons["gone"] == VETO_PREFIX + "no bar at the as-of date: liquidity unknown"
    # And every row is an abstention: liquidity never votes a direction
    assert votes["probability"].null_count() == votes.height
    assert sorted(vetoed(votes)["symbol"]) == ["gappy", "gone", "thin"]
    # And a position of 2 % of daily volume is vetoed even on a liquid coin
    big = liquidity_votes(frame, T, config=LiquidityConfig(position_usd=1e6))
    assert (
        "is 2.0% of the median daily volume"
        in big.filter(pl.col("symbol") == "liquid")["abstain_reason"][0]
    )


def test_liquidity_uses_order_book_depth_when_given() -> None:
    frame = _daily("liquid", [5e7] * 30)
    depth = pl.DataFrame(
        {"symbol": ["liquid"], "ts": [T], "bid_depth_usd": [1e4], "ask_depth_usd": [9e5]}
    )
    votes = liquidity_votes(frame, T, depth, LiquidityConfig(position_usd=2_000.0))
    assert "exceeds 10.0% of the thinner book side $10000" in votes["abstain_reason"][0]
    assert votes.schema == pl.Schema(VOTE_SCHEMA)
