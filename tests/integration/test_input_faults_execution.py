"""One bad recorded bar affects only its symbol; the execution cycle goes on for the others.

Real path: `cst scan` then `cst execute` (the hourly Lambda's cycle) on the embedded local AWS,
over the real recorded data with one real Binance file damaged the way files get damaged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.coins import COINGECKO_IDS

pytestmark = pytest.mark.realdata

BAR_0200 = 1_609_812_000_000  # 2021-01-05T02:00Z, the bar the scan's 01:xx orders fill on


def strict_json(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def linked_data(data_dir: Path, dest: Path, *, damaged_1h: dict[str, str] | None = None) -> Path:
    """A data dir of links to the real files; ``damaged_1h`` maps a base (BTC) to a file text
    that replaces its 1h candle file."""
    coins = dest / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    (dest / "coingecko_daily" / "coins_metadata.json").symlink_to(
        data_dir / "coingecko_daily" / "coins_metadata.json"
    )
    for coin in sorted(set(COINGECKO_IDS.values())):  # the coins the recorded pairs trade
        src = data_dir / "coingecko_daily" / "coins" / f"{coin}.csv"
        if src.is_file():
            (coins / src.name).symlink_to(src)
    spot = dest / "binance_spot"
    spot.mkdir()
    for tf in ("1d", "4h"):
        (spot / tf).symlink_to(data_dir / "binance_spot" / tf)
    (spot / "1h").mkdir()
    for src in sorted((data_dir / "binance_spot" / "1h").glob("*.json")):
        base = src.name.split("_", 1)[0]
        if damaged_1h and base in damaged_1h:
            (spot / "1h" / src.name).write_text(damaged_1h[base])
        else:
            (spot / "1h" / src.name).symlink_to(src)
    return dest


def damaged_btc(data_dir: Path, close: str) -> str:
    """The real BTC/USDT 1h file with the 02:00 bar's close replaced by the JSON token ``close``."""
    rows = json.loads((data_dir / "binance_spot" / "1h" / "BTC_USDT-1h.json").read_bytes())
    text = [json.dumps(r) for r in rows]
    i = next(i for i, r in enumerate(rows) if r[0] == BAR_0200)
    r = rows[i]
    text[i] = f"[{r[0]}, {r[1]}, {r[2]}, {r[3]}, {close}, {r[5]}]"
    return "[" + ",\n".join(text) + "]"


def test_a_bad_bar_leaves_its_symbol_unmarked_and_untraded_and_the_cycle_goes_on(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("CST_UNIVERSE", "tradable")
    runner = CliRunner()
    good = linked_data(data_dir, tmp_path / "good")
    bad = linked_data(data_dir, tmp_path / "bad", damaged_1h={"BTC": damaged_btc(data_dir, "null")})
    state = ["--state-dir", str(tmp_path / "st")]

    def run(*args: str, data: Path) -> dict[str, object]:
        result = runner.invoke(app, [*args, "--json", "--data", str(data), *state])
        assert result.exit_code == 0, result.output
        doc = strict_json(result.stdout)
        assert isinstance(doc, dict)
        return doc

    # Given the scan's BUY decisions, sent at 01:10 on intact data
    rows = run("scan", "--asof", "2021-01-05", "--top", "10", data=good)["rows"]
    bought = {r["symbol"] for r in rows if r["order_status"] == "NEW"}  # type: ignore[union-attr]
    assert {"bitcoin", "cardano"} <= bought
    run("execute", "--at", "2021-01-05T01:10:00Z", data=good)
    # When BTC/USDT's 02:00 bar (the one the orders fill on) has no close, at 02:10 and later
    first = run("execute", "--at", "2021-01-05T02:10:00Z", data=bad)
    later = run("execute", "--at", "2021-01-05T05:10:00Z", data=bad)
    # Then every cycle completes; the other symbols fill on their real bars and are valued
    for report in (first, later):
        positions = report["positions"]
        assert isinstance(positions, dict)
        assert "bitcoin" not in positions
        assert bought - {"bitcoin"} <= set(positions)
        assert report["equity"] is not None
        # and bitcoin is unmarked with a reason naming the pair, the file and the fault
        reason = report["unmarked_reasons"]["bitcoin"]  # type: ignore[index]
        assert "BTC/USDT" in reason and "BTC_USDT-1h.json" in reason and "NAN" in reason
    # and its order is not filled on the bad bar
    result = runner.invoke(
        app, ["scan", "--asof", "2021-01-05", "--top", "10", "--json", "--data", str(good), *state]
    )
    rescanned = strict_json(result.stdout)
    assert isinstance(rescanned, dict)
    again = {r["symbol"]: r for r in rescanned["rows"]}
    assert again["bitcoin"]["order_status"] != "FILLED"


@pytest.mark.parametrize(
    ("close", "code"),
    [("null", "NAN"), ("NaN", "NAN"), ("-5.0", "NON_POSITIVE_PRICE"), ("Infinity", "NON_FINITE")],
)
def test_the_loader_rejects_a_bad_bar_naming_symbol_file_and_reason(
    data_dir: Path, tmp_path: Path, close: str, code: str
) -> None:
    root = linked_data(data_dir, tmp_path / "d", damaged_1h={"BTC": damaged_btc(data_dir, close)})
    market = RecordedMarketData(root)
    at = datetime(2021, 1, 5, 3, tzinfo=UTC)
    with pytest.raises(DataSourceError) as err:
        market.ohlcv("BTC/USDT", "1h", datetime(2021, 1, 4, tzinfo=UTC), at)
    message = str(err.value)
    assert "BTC/USDT" in message and "BTC_USDT-1h.json" in message and code in message
    assert "2021-01-05T02:00" in message
    # the bars before the damage, and the other pairs, are served as recorded
    before = market.ohlcv(
        "BTC/USDT", "1h", datetime(2021, 1, 4, tzinfo=UTC), datetime(2021, 1, 5, 1, tzinfo=UTC)
    )
    assert before.height == 26
    assert market.ohlcv("ETH/USDT", "1h", datetime(2021, 1, 4, tzinfo=UTC), at).height == 28
