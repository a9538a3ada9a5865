"""Receipt, wrapped, bridged, staked and tracker tokens are excluded by rule, each with its
reason, on the real CoinGecko metadata; real coins whose tickers merely look alike are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.universe import coin_exclusion, is_tradable_pair, pair_exclusion

pytestmark = pytest.mark.realdata

EXCLUDED = {
    "compound-usd-coin": "Compound cToken",
    "compound-ether": "Compound cToken",
    "compound-wrapped-btc": "Compound cToken",
    "tbtc": "tokenized BTC",
    "seth": "synthetic asset",
    "staked-ether": "liquid-staking",
    "rocket-pool-eth": "liquid-staking",
    "msol": "liquid-staking",
    "coinbase-wrapped-staked-eth": "wrapped",
    "wrapped-bitcoin": "BTC",
    "weth": "wrapped",
    "binance-peg-dogecoin": "bridged",
    "bridged-wrapped-ether-starkgate": "bridged",
    "veraone": "gold",
    "ousg": "Treasury",
    "tether": "stablecoin",
}
KEPT = [
    "crypto-com-chain",  # CRO: not C + RO
    "havven",  # SNX: a synthetics issuer, not a synthetic
    "uma",
    "olympus",  # OHM: treasury-backed, not a claim on one asset
    "spx6900",  # a meme coin CoinGecko also tags Bridged-Tokens
    "lido-dao",  # governance tokens of staking protocols
    "rocket-pool",
    "aave",
    "compound-governance-token",
    "pendle",
    "propy",
    "bitcoin",
    "ethereum",
    "solana",
]


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


def test_receipt_and_tracker_tokens_are_excluded_with_their_reason(
    market: RecordedMarketData,
) -> None:
    meta = market.coins_metadata()
    for coin, word in EXCLUDED.items():
        reason = meta[coin].exclusion
        assert reason is not None and word.lower() in reason.lower(), (coin, reason)


def test_real_coins_with_look_alike_tickers_are_not_excluded(market: RecordedMarketData) -> None:
    meta = market.coins_metadata()
    for coin in KEPT:
        assert meta[coin].exclusion is None, (coin, meta[coin].exclusion)
    # CEL (Celsius) left the list before 2025: its CoinGecko categories, as they were
    assert coin_exclusion("cel", "Celsius Network", ["Lending/Borrowing Protocols"]) is None
    for pair in ("CEL/USDT", "CRO/USDT", "SNX/USDT", "BZRX/USDT", "SOL/USDT", "STX/USDT"):
        assert is_tradable_pair(pair), (pair, pair_exclusion(pair))
    for pair in ("CUSDC/USDT", "CETH/USDT", "STETH/USDT", "TBTC/USDT", "SETH/USDT", "ETHX/USDT"):
        assert not is_tradable_pair(pair)
        assert pair_exclusion(pair)


def test_exclusions_are_listed_with_reasons_by_data_check_and_the_scan(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given real coin files: two receipt tokens, a staked token and three ordinary coins
    coins = tmp_path / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    (tmp_path / "coingecko_daily" / "coins_metadata.json").symlink_to(
        data_dir / "coingecko_daily" / "coins_metadata.json"
    )
    for coin in ("compound-usd-coin", "tbtc", "staked-ether", "bitcoin", "ethereum", "havven"):
        (coins / f"{coin}.csv").symlink_to(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv")
    runner = CliRunner()
    # When the data is checked
    checked = runner.invoke(app, ["data", "check", "--data", str(tmp_path), "--json"])
    assert checked.exit_code == 0, checked.output
    rules = json.loads(checked.stdout)["universe_exclusions"]
    # Then each excluded coin is listed with its reason, and the ordinary ones are not
    assert set(rules) == {"compound-usd-coin", "tbtc", "staked-ether"}
    assert "Compound cToken" in rules["compound-usd-coin"]
    # When scanned (table), the report lists them with their reasons too
    scanned = runner.invoke(
        app,
        [
            "scan",
            "--data",
            str(tmp_path),
            "--asof",
            "2023-06-01",
            "--universe",
            "all",  # a CoinGecko-only data dir: no exchange candles, nothing tradable
            "--state-dir",
            str(tmp_path / "s"),
        ],
        env={"COLUMNS": "250"},
    )
    assert scanned.exit_code == 0, scanned.output
    assert "excluded by rule 3" in scanned.stdout
    for coin in ("compound-usd-coin", "tbtc", "staked-ether"):
        assert coin in scanned.stdout
    assert "Compound cToken" in scanned.stdout
    ranked = {
        line.split("│")[2].strip() for line in scanned.stdout.splitlines() if line.count("│") > 5
    }
    assert "havven" in ranked and "tbtc" not in ranked


def test_the_tradable_scan_without_exchange_candles_says_what_is_missing(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a data dir with CoinGecko files but no recorded exchange candles
    coins = tmp_path / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    (tmp_path / "coingecko_daily" / "coins_metadata.json").symlink_to(
        data_dir / "coingecko_daily" / "coins_metadata.json"
    )
    (coins / "bitcoin.csv").symlink_to(data_dir / "coingecko_daily" / "coins" / "bitcoin.csv")
    # When the default (tradable) scan runs
    scanned = CliRunner().invoke(
        app,
        [
            "scan",
            "--data",
            str(tmp_path),
            "--asof",
            "2023-06-01",
            "--state-dir",
            str(tmp_path / "s"),
        ],
    )
    # Then it fails with the missing folder and the way out, and records nothing
    assert scanned.exit_code == 2, scanned.output
    assert "binance_spot/1h" in scanned.output and "--universe all" in scanned.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
