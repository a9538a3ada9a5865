"""Several daily cycles of the deployed schedules on a moving clock: the scan function kept warm
across days (one execution environment, as Lambda reuses it) decides each day exactly as a cold
start of that minute would, and reruns of the day's ingest runs write nothing new.

Handlers run in-process against moto with the events the deployed rules send (``infra.config``;
the universe keeps the five most liquid pairs and a new series loads a bounded history, to keep
the test fast), the recorded exchange standing in for ccxt.
"""

from __future__ import annotations

import importlib
import io
import os
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from cryptosmarttrader.adapters.aws_clients import AwsClients
from tests.integration.test_agents_deployed import (
    CONFIG,
    Context,
    _forget,
    stack,  # noqa: F401 - fixture
)

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

FIRST = datetime(2021, 11, 12, tzinfo=UTC)


def _call(module: str, event: dict[str, Any], source: str) -> dict[str, Any]:
    """One invocation of the deployed function in the current execution environment (warm:
    nothing is forgotten between calls)."""
    os.environ["CST_DATA_SOURCE"] = source
    handler = importlib.import_module(f"cryptosmarttrader.handlers.{module}").handler
    with redirect_stdout(io.StringIO()):
        result = handler(event, Context(f"cst-{module}"))
    assert result["status"] in ("ok", "up_to_date"), result
    return dict(result)


def _ingest(event: dict[str, Any]) -> dict[str, Any]:
    """The ingest function, in its own execution environment: the scan function's (its
    ``_service``) is left as it is."""
    from cryptosmarttrader.handlers import _common, ingest

    _common.reset_caches()
    ingest._source.cache_clear()
    result = _call("ingest", event, "recorded")
    return dict(result.get("report", result))


def _day_runs(day: datetime, clock: Any, *, first: bool) -> None:
    """23:50 universes, 23:55 market caps, 00:02-00:05 candles, 00:07 funding and sentiment:
    the rules' events in order, the clock moved to each rule's minute."""
    universes = [u for u in CONFIG.universes if u.exchange in ("binance", "kucoin")]
    clock.move_to(day - timedelta(minutes=10))
    for rule in universes:
        _ingest({**rule.event(), "max_pairs": 5})
    clock.move_to(day - timedelta(minutes=5))
    assert CONFIG.market_caps is not None
    caps = CONFIG.market_caps.event()
    _ingest({**caps, "lookback_days": 300} if first else caps)
    clock.move_to(day + timedelta(minutes=2))
    for schedule in CONFIG.ingest_schedules:
        if schedule.exchange == "kraken":
            continue  # not recorded
        bars = 300 if schedule.timeframe == "1d" else 48
        report = _ingest({**schedule.event(), "initial_lookback_bars": bars})
        assert report["ingested"] > 0, report
        # a rerun of the same minute writes nothing new
        assert _ingest({**schedule.event(), "initial_lookback_bars": bars})["ingested"] == 0
    clock.move_to(day + timedelta(minutes=7))
    assert CONFIG.funding is not None and CONFIG.sentiment is not None
    _ingest(CONFIG.funding.event())
    assert _ingest(CONFIG.funding.event())["ingested"] == 0
    _ingest(CONFIG.sentiment.event())


def _decision(report: dict[str, Any]) -> dict[str, Any]:
    """What a scan decided and reported (its run ids and timings aside)."""
    return {
        "asof": report["asof"],
        "agents": report["agents"],
        "regime": report["regime"],
        "exposure": report["exposure"],
        "decision_basis": report["decision_basis"],
        "rows": [
            (r["symbol"], r["action"], r["score"], r["confidence"], tuple(r["reasons"]))
            for r in report["rows"]
        ],
    }


def test_a_warm_scan_decides_each_day_as_a_cold_start_of_that_minute(
    stack: AwsClients,  # noqa: F811 - the fixture (no deployment setting is left set)
) -> None:
    warm: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    with time_machine.travel(FIRST - timedelta(minutes=10), tick=True) as clock:
        for i in range(3):
            day = FIRST + timedelta(days=i)
            _day_runs(day, clock, first=i == 0)
            clock.move_to(day + timedelta(minutes=15))
            # the scan function's environment: warm after the first day
            if i == 0:
                _forget()
            warm.append(_decision(_call("scan", CONFIG.scan.event(), "ccxt")["report"]))
            # a cold start of the same minute (its environment is the next day's warm one)
            _forget()
            cold.append(_decision(_call("scan", CONFIG.scan.event(), "ccxt")["report"]))
    # Then every day is its own decision, and warm equals cold
    assert [w["asof"][:10] for w in warm] == ["2021-11-12", "2021-11-13", "2021-11-14"]
    for w, c in zip(warm, cold, strict=True):
        assert w == c
    # and the agents reading the side data vote on each day's data
    for w in warm:
        for name in ("technical", "funding", "sentiment", "liquidity", "regime"):
            assert w["agents"][name]["votes"] >= 1, (w["asof"], name, w["agents"][name])
