"""`cst scan` end to end through the CLI on the embedded local AWS, over the real data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.agents.tally import AGENT_NAMES

pytestmark = pytest.mark.realdata
runner = CliRunner()
ASOF = "2021-05-01"
ASOF_MS = 1_619_827_200_000


def _scan(*args: str, state: Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["scan", *args, "--state-dir", str(state)])
    return result.exit_code, result.stdout, result.stderr


def _subset(data_dir: Path, dest: Path, coins: list[str]) -> Path:
    (dest / "coingecko_daily" / "coins").mkdir(parents=True)
    shutil.copy(data_dir / "coingecko_daily" / "coins_metadata.json", dest / "coingecko_daily")
    # the exchange candles, read in place: the default scan ranks what the paper venue trades
    (dest / "binance_spot").symlink_to(data_dir / "binance_spot", target_is_directory=True)
    for coin in coins:
        shutil.copy(
            data_dir / "coingecko_daily" / "coins" / f"{coin}.csv",
            dest / "coingecko_daily" / "coins" / f"{coin}.csv",
        )
    return dest


COINS = ["bitcoin", "ethereum", "solana", "cardano", "dogecoin", "chainlink", "litecoin", "tether"]


def test_json_contract_and_rerun_creates_no_second_order(data_dir: Path, tmp_path: Path) -> None:
    # Given the full real universe and an empty local state
    state = tmp_path / "state"
    # When scanning twice as of the same date
    code1, out1, _ = _scan(
        "--data", str(data_dir), "--asof", ASOF, "--top", "8", "--json", state=state
    )
    code2, out2, _ = _scan(
        "--data", str(data_dir), "--asof", ASOF, "--top", "8", "--json", state=state
    )
    assert code1 == 0
    assert code2 == 0
    report, second_report = json.loads(out1), json.loads(out2)
    first, second = report["rows"], second_report["rows"]
    # Then the report counts each of the nine agents' votes and abstentions, with the reasons
    assert set(AGENT_NAMES) <= set(report["agents"])
    scored = report["agents"]["technical"]["votes"] + report["agents"]["technical"]["abstentions"]
    assert scored >= len(first)
    for name in AGENT_NAMES:
        counts = report["agents"][name]
        assert counts["votes"] + counts["abstentions"] == scored, name
        assert sum(counts["abstention_reasons"].values()) == counts["abstentions"], name
    assert report["agents"]["ml"]["abstention_reasons"] == {
        "no fitted model configured: the scan ranks on the technical agent alone": scored
    }
    assert {"asof", "universe", "decision_basis", "model_version", "regime"} <= report.keys()
    # And each row carries the contract fields
    for row in first:
        assert {
            "symbol",
            "score",
            "confidence",
            "action",
            "client_order_id",
            "reasons",
        } <= row.keys()
        assert (row["client_order_id"] is None) == (row["action"] != "buy")
    ordered = {r["symbol"]: r["client_order_id"] for r in first if r["client_order_id"]}
    assert ordered
    # And the second run reports the same order IDs as duplicates, with no second order stored
    assert {r["symbol"]: r["client_order_id"] for r in second if r["client_order_id"]} == ordered
    assert all("duplicate suppressed" in r["reasons"][-1] for r in second if r["client_order_id"])
    snapshot = json.loads((state / "snapshot.json").read_text())
    orders = next(v for k, v in snapshot["tables"].items() if "orders" in k)
    assert len(orders) == len(ordered)


def test_rows_after_asof_are_never_used(data_dir: Path, tmp_path: Path) -> None:
    # Given two copies of the same coins: one cut at --asof, one whose later rows are tampered
    cut = _subset(data_dir, tmp_path / "cut", COINS)
    tampered = _subset(data_dir, tmp_path / "tampered", COINS)
    for coin in COINS:
        for root, change in ((cut, "cut"), (tampered, "tamper")):
            path = root / "coingecko_daily" / "coins" / f"{coin}.csv"
            frame = pl.read_csv(path)
            if change == "cut":
                frame = frame.filter(pl.col("timestamp") <= ASOF_MS)
            else:
                frame = frame.with_columns(
                    price=pl.when(pl.col("timestamp") > ASOF_MS)
                    .then(pl.col("price") * 50)
                    .otherwise(pl.col("price"))
                )
            frame.write_csv(path)
    # When scanning each as of the same date
    outs = []
    for root in (cut, tampered):
        code, out, err = _scan(
            "--data", str(root), "--asof", ASOF, "--json", state=tmp_path / root.name / "s"
        )
        assert code == 0, err
        outs.append(json.loads(out))
    # Then the decisions, scores and order IDs are identical
    assert outs[0] == outs[1]
    assert "tether" not in {r["symbol"] for r in outs[0]["rows"]}  # stablecoins never ranked


def test_the_report_option_of_earlier_scripts_prints_the_same_report(
    data_dir: Path, tmp_path: Path
) -> None:
    root = _subset(data_dir, tmp_path / "d", COINS)
    outs = [
        _scan("--data", str(root), "--asof", ASOF, "--json", *extra, state=tmp_path / name)
        for name, extra in (("plain", ()), ("report", ("--report",)))
    ]
    assert [code for code, _, _ in outs] == [0, 0], outs
    assert json.loads(outs[0][1]) == json.loads(outs[1][1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/nonexistent/dir", "--asof", ASOF], "not found"),
        (["--asof", "2999-01-01"], "in the future"),
        (["--asof", "1999-01-01"], "no market data"),
        (["--asof", "01/05/2021"], "YYYY-MM-DD"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    data_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    if "--data" not in args:
        args = ["--data", str(data_dir), *args]
    state = tmp_path / "state"
    code, _, err = _scan(*args, state=state)
    assert code != 0
    assert message in err
    assert err.strip().count("\n") == 0, err
    assert not state.exists()


def test_missing_column_is_named(data_dir: Path, tmp_path: Path) -> None:
    root = _subset(data_dir, tmp_path / "bad", ["bitcoin", "ethereum"])
    path = root / "coingecko_daily" / "coins" / "ethereum.csv"
    path.write_text(path.read_text().replace("market_cap", "mcap", 1))
    code, _, err = _scan("--data", str(root), "--asof", ASOF, state=tmp_path / "s")
    assert code != 0
    assert "ethereum.csv" in err
    assert "market_cap" in err
    assert not (tmp_path / "s").exists()


def test_malformed_metadata_json_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    root = _subset(data_dir, tmp_path / "bad", ["bitcoin"])
    (root / "coingecko_daily" / "coins_metadata.json").write_text('{"bitcoin": {"id": ')
    code, _, err = _scan("--data", str(root), "--asof", ASOF, state=tmp_path / "s")
    assert code != 0
    assert "coins_metadata.json" in err


def test_unknown_option_fails(tmp_path: Path) -> None:
    code, _, err = _scan("--asof", ASOF, "--frobnicate", state=tmp_path / "s")
    assert code != 0
    assert "frobnicate" in err


def test_truncated_csv_is_refused_not_misread(data_dir: Path, tmp_path: Path) -> None:
    # Given a coin file cut mid-line (its last number would otherwise parse as a wrong price)
    root = _subset(data_dir, tmp_path / "cut", ["bitcoin", "ethereum"])
    path = root / "coingecko_daily" / "coins" / "bitcoin.csv"
    path.write_bytes(path.read_bytes()[:5000])
    # When scanning
    code, _, err = _scan("--data", str(root), "--asof", ASOF, state=tmp_path / "s")
    # Then it stops on one line naming the file, and writes nothing
    assert code != 0
    assert "bitcoin.csv" in err
    assert "truncated" in err
    assert not (tmp_path / "s").exists()
