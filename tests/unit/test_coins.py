"""Exchange pair → CoinGecko coin mapping (explicit only) and the day key of a market cap."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from cryptosmarttrader.domain.coins import (
    COINGECKO_IDS,
    MARKET_CAP_SCHEMA,
    check_market_caps,
    day_key_ms,
    resolve_pairs,
)

# Tickers of the recorded CoinGecko coin list (coins_metadata.json): ETH and SOL are shared.
COIN_LIST = {
    "ethereum": "eth",
    "bridged-wrapped-ether-starkgate": "eth",
    "solana": "sol",
    "wrapped-solana": "sol",
    "binance-peg-sol": "sol",
    "kucoin-shares": "kcs",
    "sonic-3": "s",
}


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_pairs_map_through_the_explicit_table_even_when_the_ticker_is_shared() -> None:
    resolution = resolve_pairs(["ETH/USDT", "SOL/USDT", "BTC/USDT"], coin_symbols=COIN_LIST)
    assert resolution.coins == {"BTC/USDT": "bitcoin", "ETH/USDT": "ethereum",
                                "SOL/USDT": "solana"}  # fmt: skip
    assert resolution.rejected == {}


def test_unmapped_ambiguous_and_duplicate_pairs_are_rejected_with_the_reason() -> None:
    table = {k: v for k, v in COINGECKO_IDS.items() if k not in {"SOL", "KCS"}}
    resolution = resolve_pairs(
        ["SOL/USDT", "KCS/USDT", "XYZ/USDT", "LUNA/USDT", "BTC/USDT", "BTC/USDC", "BTCUSDT"],
        table=table,
        coin_symbols=COIN_LIST,
    )
    assert resolution.coins == {"BTC/USDC": "bitcoin"}  # sorted: USDC before USDT
    reasons = resolution.rejected
    assert "3 coins carry it (binance-peg-sol, solana, wrapped-solana)" in reasons["SOL/USDT"]
    assert "the coin list names kucoin-shares" in reasons["KCS/USDT"]
    assert "no coin in the coin list carries it" in reasons["XYZ/USDT"]
    assert reasons["LUNA/USDT"].startswith("ambiguous ticker LUNA")
    assert reasons["BTC/USDT"] == "bitcoin is already represented by BTC/USDC"
    assert "not an exchange pair" in reasons["BTCUSDT"]


def test_a_value_is_keyed_at_the_first_midnight_at_which_it_was_known() -> None:
    assert day_key_ms(_ms(2023, 12, 31)) == _ms(2023, 12, 31)  # a 00:00 snapshot keeps its day
    assert day_key_ms(_ms(2023, 12, 31) + 1) == _ms(2024, 1, 1)
    assert day_key_ms(_ms(2023, 12, 31, 23, 55)) == _ms(2024, 1, 1)


def test_a_cap_observed_before_midnight_passes_the_gate_keyed_at_that_midnight() -> None:
    # Given the 23:55 run: a value observed now is keyed at the coming midnight (day_key_ms),
    # one keyed a day later could not have been observed yet
    now = _ms(2021, 11, 11, 23, 55)
    frame = pl.DataFrame(
        [("bitcoin", day_key_ms(now), 1.2e12), ("ethereum", _ms(2021, 11, 13), 5.4e11)],
        schema=MARKET_CAP_SCHEMA,
        orient="row",
    )
    # When the gate judges them at 23:55
    verdict = check_market_caps(frame, now)
    # Then the value keyed at the coming midnight is kept (the scan at 00:15 reads it), the
    # one keyed beyond it is refused as from the future
    assert verdict.clean.rows() == [("bitcoin", _ms(2021, 11, 12), 1.2e12)]
    assert [(c, r.split(":")[0]) for c, _, r in verdict.rejected] == [("ethereum", "future")]
