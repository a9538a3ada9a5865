"""Market caps in the lake: CoinGecko parsing, ingest → lake → daily universe → drift and canary.

The ``/coins/markets`` payload is built from real recorded values (see
``tests/fixtures/coingecko/README.md``: no network here to record a live answer). Everything
else runs the handlers in-process on moto with the recorded real data: the ingest handler
writes real Binance daily candles and the real CoinGecko caps of their coins to the lake, and
the drift and canary handlers then read the lake (``CST_DATA_SOURCE=ccxt``), where the model's
eligibility rule (a coin must report a market cap) is met only through the joined caps.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from moto import mock_aws

from cryptosmarttrader import handlers
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.coingecko_market_caps import (
    CoinGeckoMarketCaps,
    RecordedMarketCaps,
    parse_markets,
)
from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.coins import check_market_caps
from cryptosmarttrader.handlers import _common, drift, model_canary
from cryptosmarttrader.services.model_lifecycle import TrainedModel
from cryptosmarttrader.services.model_registry import ModelRegistryService
from cryptosmarttrader.settings import AwsResources
from cryptosmarttrader.wiring import lake_market_data
from cst_devtools.local_aws import ensure_resources
from tests.integration.test_ml_training import (  # noqa: F401 - fixtures
    cleared,
    trained_models,
    universe,
)

pytestmark = pytest.mark.realdata

FIXTURE = Path(__file__).parents[1] / "fixtures" / "coingecko" / "coins_markets_usd_2023-12-31.json"
SNAPSHOT_MS = 1_703_980_800_000  # 2023-12-31 00:00 UTC, the recorded rows' timestamp
PAIRS = ["ADA/USDT", "BNB/USDT", "BTC/USDT", "ETH/USDT", "LINK/USDT", "LTC/USDT", "TRX/USDT",
         "XRP/USDT"]  # fmt: skip
ASOF = datetime(2019, 9, 15, tzinfo=UTC)
BUCKET, TABLE = "caps-lake", "caps-state"


@dataclass
class Context:
    function_name: str = "cst"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst"
    aws_request_id: str = "req-caps"


def _csv_caps(data_dir: Path, coin: str) -> dict[int, float | None]:
    frame = pl.read_csv(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv")
    return dict(zip(frame["timestamp"].to_list(), frame["market_cap"].to_list(), strict=True))


# ------------------------------------------------------------------ CoinGecko /coins/markets
def test_coins_markets_answer_is_parsed_keyed_and_gated(data_dir: Path) -> None:
    # Given the /coins/markets answer of 2023-12-31 (real recorded values) and the coins asked
    body = FIXTURE.read_bytes()
    asked = ["bitcoin", "ethereum", "solana", "dogecoin", "binance-peg-avalanche", "avalanche-2"]
    fetched_at = datetime(2023, 12, 31, 0, 10, tzinfo=UTC)
    # When it is parsed and gated
    batch = parse_markets(body, asked, fetched_at, timedelta(hours=24))
    verdict = check_market_caps(batch.frame, int(fetched_at.timestamp() * 1000), asked)
    # Then each good coin keeps exactly its recorded cap, keyed at the midnight it was known
    clean = {c: (ts, cap) for c, ts, cap in verdict.clean.iter_rows()}
    assert set(clean) == {"bitcoin", "ethereum", "solana", "dogecoin"}
    for coin, (ts, cap) in clean.items():
        assert ts == SNAPSHOT_MS
        assert cap == _csv_caps(data_dir, coin)[SNAPSHOT_MS]
    # and the recorded zero cap is rejected by the gate, the coin not answered by the source
    assert [(c, r.split(":")[0]) for c, _, r in verdict.rejected] == [
        ("binance-peg-avalanche", "non_positive_cap")
    ]
    assert batch.rejected == (
        ("avalanche-2", f"absent: not in the /coins/markets answer fetched at {1703981400000}"),
    )


def test_a_replay_at_2355_keys_the_caps_as_the_live_fetch_does(data_dir: Path) -> None:
    # Given the recorded source asked at 23:55 for the last day (the 23:55 rule's run), and the
    # CoinGecko row dated the coming midnight: the end-of-day value a live fetch at 23:55
    # observes and keys at that midnight (a CMC snapshot of the end of day D matches
    # CoinGecko's 00:00 row of D + 1, see the data's README)
    now = datetime(2021, 11, 11, 23, 55, tzinfo=UTC)
    midnight = int(datetime(2021, 11, 12, tzinfo=UTC).timestamp() * 1000)
    source = RecordedMarketCaps(RecordedMarketData(data_dir))
    # When it is fetched and gated at 23:55
    batch = source.fetch_market_caps(["bitcoin"], now - timedelta(days=1), now)
    verdict = check_market_caps(batch.frame, int(now.timestamp() * 1000), ["bitcoin"])
    # Then the lake gets the cap keyed at that midnight, as recorded, and nothing later
    keys = verdict.clean["ts"].to_list()
    assert max(keys) == midnight and verdict.rejected == ()
    assert verdict.clean.filter(pl.col("ts") == midnight)["market_cap"].to_list() == [
        _csv_caps(data_dir, "bitcoin")[midnight]
    ]
    # and a replay at noon gets no end-of-day value yet: nothing keyed after the fetch
    noon = source.fetch_market_caps(["bitcoin"], now - timedelta(days=1), now - timedelta(hours=12))
    assert noon.frame["ts"].max() == midnight - 86_400_000


def test_malformed_or_stale_rows_are_rejected_with_a_reason() -> None:
    # Given the recorded answer with one field broken per row, visibly
    rows: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())
    rows[0]["market_cap"] = "826609156660.5117"  # a string where a number belongs
    del rows[1]["last_updated"]
    rows[2]["last_updated"] = "2023-12-29T00:00:00.000Z"  # two days before the fetch
    rows[3]["id"] = ""
    rows.append(dict(rows[4], id="solana"))  # solana twice
    asked = ["bitcoin", "ethereum", "solana", "dogecoin", "binance-peg-avalanche"]
    fetched_at = datetime(2023, 12, 31, 0, 10, tzinfo=UTC)
    # When parsed
    batch = parse_markets(json.dumps(rows).encode(), asked, fetched_at, timedelta(hours=24))
    reasons = {coin: reason.split(":")[0] for coin, reason in batch.rejected}
    # Then every broken row is named with why, and only the intact rows come through
    assert reasons == {
        "bitcoin": "invalid",
        "ethereum": "invalid",  # last_updated is a required field
        "solana": "stale",
        "#3": "invalid",
        "dogecoin": "absent",
    }
    assert batch.frame["coin"].to_list() == ["binance-peg-avalanche", "solana"]
    assert "stale" not in reasons.get("#5", "")


def test_live_source_asks_for_the_coins_in_usd_and_rejects_an_error_answer() -> None:
    # Given the live adapter with the HTTP GET replaced by the recorded answer
    urls: list[str] = []

    def get(url: str) -> bytes:
        urls.append(url)
        return FIXTURE.read_bytes()

    now = datetime(2023, 12, 31, 0, 10, tzinfo=UTC)
    source = CoinGeckoMarketCaps(lambda: now, get=get)
    # When the day's caps are fetched
    batch = source.fetch_market_caps(["bitcoin", "ethereum"], now - timedelta(days=1), now)
    # Then one request named the coins, in USD, and the unrequested rows were refused
    assert len(urls) == 1
    assert "vs_currency=usd" in urls[0] and "ids=bitcoin%2Cethereum" in urls[0]
    assert sorted(batch.frame["coin"].to_list()) == ["bitcoin", "ethereum"]
    assert {r.split(":")[0] for _, r in batch.rejected} == {"unrequested"}
    # and a rate-limit answer (an object, not a list) raises a retryable error
    limited = CoinGeckoMarketCaps(
        lambda: now, get=lambda _: b'{"status": {"error_code": 429, "error_message": "rate"}}'
    )
    with pytest.raises(RuntimeError, match="expected a JSON list") as raised:
        limited.fetch_market_caps(["bitcoin"], now - timedelta(days=1), now)
    assert getattr(raised.value, "retryable", False)


# ------------------------------------------------------------------ ingest → lake → models
INGEST_MODULE = "cryptosmarttrader.handlers.ingest"


def _fresh_ingest_handler(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The ingest handler imported afresh under its own logger name, and put back afterwards:
    Powertools configures a logger once per name, so a shared one would keep this test's
    output stream for the ingest handler's own tests."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cst-ingest-market-caps-test")
    monkeypatch.delitem(sys.modules, INGEST_MODULE, raising=False)
    module = importlib.import_module(INGEST_MODULE)
    monkeypatch.setattr(handlers, "ingest", module, raising=False)
    return module


@pytest.fixture
def lake_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[AwsClients]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                       "CST_LAKE_BUCKET": BUCKET, "CST_STATE_TABLE": TABLE,
                       "CST_DATA_DIR": str(data_dir), "CST_DATA_SOURCE": "recorded",
                       "CST_MODEL_REGISTRY": "embedded", "POWERTOOLS_TRACE_DISABLED": "true",
                       }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    _fresh_ingest_handler(monkeypatch)
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients, ASOF)
        _common.reset_caches()
        for fn in (drift._service, model_canary._service):
            fn.cache_clear()
        yield clients
        _common.reset_caches()


def _ingest(event: dict[str, Any]) -> dict[str, Any]:
    handler = sys.modules[INGEST_MODULE].handler
    result: dict[str, Any] = handler(event, Context())
    assert result["status"] == "ok", result
    return result


def _ingest_candles() -> None:
    _ingest({"exchange": "binance", "timeframe": "1d", "symbols": PAIRS,
             "initial_lookback_bars": 110, "replay_asof": ASOF.isoformat()})  # fmt: skip


def _ingest_caps(asof: datetime, days: int) -> dict[str, Any]:
    event = {"dataset": "market_caps", "exchange": "binance", "symbols": [*PAIRS, "LUNA/USDT"],
             "lookback_days": days, "replay_asof": asof.isoformat()}  # fmt: skip
    report: dict[str, Any] = _ingest(event)["report"]
    return report


def test_ingested_caps_join_the_lake_bars_without_look_ahead(
    lake_env: AwsClients, data_dir: Path
) -> None:
    # Given the lake holds real daily candles, and market caps up to two weeks AFTER the as-of
    _ingest_candles()
    first = _ingest_caps(ASOF, 120)
    later = _ingest_caps(ASOF + timedelta(days=14), 14)
    rerun = _ingest_caps(ASOF + timedelta(days=14), 14)
    # When the daily universe is read as of ASOF through the Lambdas' wiring
    market = lake_market_data(lake_env.s3, AwsResources(), "binance")
    frame = market.daily_universe(ASOF, 60)
    # Then every bar carries the cap CoinGecko recorded for its coin at that very midnight
    asof_ms = int(ASOF.timestamp() * 1000)
    coins = first["coins"]
    assert set(coins) == set(PAIRS) and coins["BTC/USDT"] == "bitcoin"
    assert frame["ts"].max() == asof_ms  # nothing keyed after the as-of
    assert frame["market_cap"].null_count() == 0
    for pair, coin in coins.items():
        recorded = _csv_caps(data_dir, coin)
        rows = frame.filter(pl.col("symbol") == pair)
        assert rows.height == 60
        assert rows["market_cap"].to_list() == [recorded[t] for t in rows["ts"].to_list()]
    # and the ambiguous ticker is refused with the reason, never mapped
    assert "LUNA/USDT" in first["unmapped"] and "ambiguous" in first["unmapped"]["LUNA/USDT"]
    # and later caps were written, but a rerun of the same day writes nothing
    assert first["ingested"] == 8 * 121 and later["objects_written"] >= 1
    assert rerun["objects_written"] == 0


def test_drift_and_canary_lambdas_find_eligible_coins_in_the_lake(
    lake_env: AwsClients,
    trained_models: Mapping[str, TrainedModel],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the full model (trained to 2019-06-30) in production, the weak one as a candidate,
    # and the lake holding real Binance daily candles only
    registry = ModelRegistryService(
        EmbeddedModelRegistry("cst-daily-ml", bucket=BUCKET, table=TABLE, s3=lake_env.s3,
                              dynamodb=lake_env.dynamodb),
        FixedClock(ASOF),
    )  # fmt: skip
    for name in ("full", "weak"):
        model = cleared(trained_models[name])  # promotable: the drift/canary path is tested
        assert isinstance(model.predictor, XgbPredictor)
        registry.register(model.card, model.predictor.to_bytes(), model.reference)
    registry.promote(1, "bootstrap", "tests")
    _ingest_candles()
    monkeypatch.setenv("CST_DATA_SOURCE", "ccxt")  # the deployed path: the Lambdas read the lake
    _common.reset_caches()
    drift._service.cache_clear()
    check = {"asof": ASOF.date().isoformat()}
    without_caps: dict[str, Any] = drift.handler(check, Context())  # type: ignore[arg-type]
    # When the market caps are ingested and the drift check and the canary gate run again
    monkeypatch.setenv("CST_DATA_SOURCE", "recorded")
    _common.reset_caches()
    _ingest_caps(ASOF, 120)
    monkeypatch.setenv("CST_DATA_SOURCE", "ccxt")
    _common.reset_caches()
    drift._service.cache_clear()
    with_caps: dict[str, Any] = drift.handler(check, Context())  # type: ignore[arg-type]
    gate: dict[str, Any] = model_canary.handler(
        {"action": "evaluate", "version": 2, "asof": ASOF.date().isoformat()},
        Context(),  # type: ignore[arg-type]
    )
    # Then without caps no coin was eligible: nothing to score, nothing to calibrate
    assert without_caps["prediction"]["psi"] is None and without_caps["calibration"] is None
    assert "only 0 current rows" in " ".join(without_caps["notes"])
    # and with them the check scores the coins of the last 28 days and calibrates on matured ones
    (note,) = [n for n in with_caps["notes"] if "current rows" in n]
    current = int(re.search(r"only (\d+) current rows", note).group(1))  # type: ignore[union-attr]
    assert 0 < current <= 4 * len(PAIRS)  # 4 sampled days x 8 coins at most
    assert with_caps["prediction"]["psi"] is not None
    assert with_caps["calibration"]["n"] > 0
    # and the canary gate scores candidate and incumbent on the same out-of-sample lake rows
    # (8 large coins in Jul-Aug 2019: no +50 % month among them, so AUC is undefined and Brier
    # is the score); fewer rows than the policy's 500, so it refuses to promote, saying so
    assert gate["scores"]["candidate"]["n"] == gate["scores"]["incumbent"]["n"] > 0
    assert gate["scores"]["candidate"]["brier"] is not None
    assert gate["verdict"] == "rollback" and "rows" in gate["summary"]
