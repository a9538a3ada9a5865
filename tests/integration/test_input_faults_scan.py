"""Bad input never aborts `cst scan` and never reaches a decision (real data, CLI path).

Given / When / Then over subsets of the real CoinGecko files (linked, or copied when a test
damages one): rows where every agent abstained, an infinite price, and strict JSON output.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app

pytestmark = pytest.mark.realdata
runner = CliRunner()

# As of 2018-01-01 these coins have 60 to 90 daily bars: enough for the technical agent's
# minimum history, not for its 90-day momentum (the rows that crashed the ranking).
YOUNG = ["0x", "cardano", "decentraland", "icon", "loopring", "propy", "request-network"]
OLD = ["bitcoin", "ethereum", "litecoin", "ripple", "dogecoin"]


def strict_json(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def data_subset(
    data_dir: Path, dest: Path, coins: list[str], *, copy: tuple[str, ...] = ()
) -> Path:
    """A data dir holding the real files of ``coins`` (symlinks; real copies for ``copy``)."""
    folder = dest / "coingecko_daily" / "coins"
    folder.mkdir(parents=True)
    (dest / "coingecko_daily" / "coins_metadata.json").symlink_to(
        data_dir / "coingecko_daily" / "coins_metadata.json"
    )
    for coin in coins:
        src = data_dir / "coingecko_daily" / "coins" / f"{coin}.csv"
        if coin in copy:
            shutil.copy(src, folder / src.name)
        else:
            (folder / src.name).symlink_to(src)
    return dest


def scan(root: Path, state: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app,
        # CoinGecko-only data dirs: no exchange candles, so the research universe
        [
            "scan",
            "--data",
            str(root),
            "--state-dir",
            str(state),
            "--json",
            "--universe",
            "all",
            *list(args),
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_rows_where_every_agent_abstained_do_not_crash_the_ranking(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given the coins that had too little history for momentum on 2018-01-01
    root = data_subset(data_dir, tmp_path / "d", YOUNG + OLD)
    # When scanning the whole universe
    code, out, err = scan(root, tmp_path / "s", "--asof", "2018-01-01", "--top", "1000")
    # Then the scan completes; those coins abstain with the reason, after every real score
    assert code == 0, err
    report = strict_json(out)
    assert isinstance(report, dict)
    rows = report["rows"]
    by_symbol = {r["symbol"]: r for r in rows}
    for coin in YOUNG:
        assert by_symbol[coin]["action"] == "abstain", by_symbol[coin]
        assert by_symbol[coin]["score"] is None
        assert "90-day momentum" in by_symbol[coin]["reasons"][0]
    scored = [i for i, r in enumerate(rows) if r["score"] is not None]
    abstained = [i for i, r in enumerate(rows) if r["action"] == "abstain"]
    assert scored and max(scored) < min(abstained)


def test_an_infinite_price_is_rejected_by_the_gate_and_never_ranked(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given the real litecoin file damaged with an infinite price on the day before the scan
    root = data_subset(data_dir, tmp_path / "d", OLD, copy=("litecoin",))
    path = root / "coingecko_daily" / "coins" / "litecoin.csv"
    frame = pl.read_csv(path)
    day = 1_514_678_400_000  # 2017-12-31
    assert day in frame["timestamp"].to_list()
    frame.with_columns(
        price=pl.when(pl.col("timestamp") == day).then(math.inf).otherwise(pl.col("price"))
    ).write_csv(path)
    # When scanning as of 2018-01-01
    code, out, err = scan(root, tmp_path / "s", "--asof", "2018-01-01", "--top", "1000")
    # Then the scan completes, its JSON is strict, and litecoin is excluded, not ranked first
    assert code == 0, err
    report = strict_json(out)
    assert isinstance(report, dict)
    rows = report["rows"]
    assert "litecoin" not in {r["symbol"] for r in rows}
    assert all(r["score"] is None or 0.0 <= r["score"] <= 1.0 for r in rows)
    assert all(r["price"] is None or math.isfinite(r["price"]) for r in rows)
