"""Benchmark: every agent for the whole universe at one date (``run_agents``).

Runs all agents (technical, early mover, funding, arbitrage, sentiment, liquidity) plus regime
detection on the full CoinGecko universe (the coins with a bar at the date, 260-day window as the scan,
quality-gated) with Binance spot, BTC perpetual funding and mark data, at 20 dates spread over
2022–2023, and prints p50 / p95 wall time per date. Data loading and the quality gate are
outside the timed section.

Reference: the same agents called once per symbol (a per-symbol Python loop over the same code
on one-symbol frames) at ``--loop-dates`` of those dates. The ratio is loop time / vectorized
time for equal inputs. Note the loop reference cannot reproduce cross-sectional signals (the
early mover ranks coins against each other), so only its speed is compared, not its votes.

    uv run python bench/bench_agents.py [--data DIR] [--loop-dates N]

No asserts on timing: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.agents.registry import (
    AGENTS,
    AgentConfigs,
    AgentInputs,
    MarketState,
    detect_regime,
    run_agents,
)
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily

LOOKBACK_DAYS = 260  # as the scan service


def _state(market: RecordedMarketData, universe: pl.DataFrame, asof_ms: int) -> MarketState:
    asof = datetime.fromtimestamp(asof_ms / 1000, tz=UTC)
    start = datetime.fromtimestamp((asof_ms - 60 * DAY_MS) / 1000, tz=UTC)
    window = universe.filter(
        (pl.col("ts") > asof_ms - LOOKBACK_DAYS * DAY_MS) & (pl.col("ts") <= asof_ms)
    )
    return MarketState(
        universe=check_daily(window, asof_ms).clean,
        ohlcv=market.ohlcv_all("1d", asof),
        funding=market.funding_rates("BTC/USDT", start, asof),
        mark=market.mark_prices("BTC/USDT", start, asof),
        aliases={"BTC/USDT": "bitcoin"},
    )


def _vectorized(state: MarketState, asof_ms: int) -> float:
    t0 = time.perf_counter()
    run_agents(state, asof_ms)
    detect_regime(state, asof_ms)
    return time.perf_counter() - t0


def _per_agent(state: MarketState, asof_ms: int) -> dict[str, float]:
    inputs = AgentInputs(
        state, asof_ms, state.universe, state.universe["symbol"].unique().to_list()
    )
    out: dict[str, float] = {}
    for spec in AGENTS:
        t0 = time.perf_counter()
        spec.run(inputs, AgentConfigs())
        out[spec.name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    detect_regime(state, asof_ms)
    out["regime"] = time.perf_counter() - t0
    return out


def _per_symbol_loop(state: MarketState, asof_ms: int) -> float:
    groups = state.universe.partition_by("symbol", as_dict=True)
    t0 = time.perf_counter()
    for (symbol,), frame in groups.items():
        one = MarketState(
            universe=frame,
            ohlcv=state.ohlcv,
            funding=state.funding,
            mark=state.mark,
            aliases={k: v for k, v in state.aliases.items() if v == symbol},
        )
        run_agents(one, asof_ms)
    detect_regime(state, asof_ms)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CST_DATA_DIR", Path(__file__).parents[2] / "shared/data")),
    )
    parser.add_argument("--loop-dates", type=int, default=3)
    args = parser.parse_args()

    market = RecordedMarketData(args.data)
    meta = market.coins_metadata()
    excluded = [k for k, v in meta.items() if v.is_stablecoin or v.is_wrapped]
    universe = market.daily_all().filter(~pl.col("symbol").is_in(excluded))
    first = int(datetime(2022, 1, 3, tzinfo=UTC).timestamp() * 1000)
    dates = [first + i * 36 * DAY_MS for i in range(20)]  # 2022-01 → 2023-11

    states = {d: _state(market, universe, d) for d in dates}
    _vectorized(states[dates[0]], dates[0])  # warm-up
    times = [_vectorized(states[d], d) for d in dates]
    coins = [states[d].universe["symbol"].n_unique() for d in dates]
    q = statistics.quantiles(times, n=20)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"universe: {min(coins)}–{max(coins)} coins per date, {len(dates)} dates 2022–2023")
    print(
        f"run_agents + regime, vectorized: p50 {statistics.median(times) * 1000:.0f} ms, "
        f"p95 {q[18] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
    )
    parts = [_per_agent(states[d], d) for d in dates]
    print(
        "median per part: "
        + ", ".join(f"{k} {statistics.median(p[k] for p in parts) * 1000:.0f} ms" for k in parts[0])
    )
    loop_dates = dates[:: max(1, len(dates) // max(1, args.loop_dates))][: args.loop_dates]
    loop = [_per_symbol_loop(states[d], d) for d in loop_dates]
    vec = [times[dates.index(d)] for d in loop_dates]
    print(
        f"per-symbol loop reference on {len(loop_dates)} dates: "
        f"median {statistics.median(loop) * 1000:.0f} ms → vectorized is "
        f"{statistics.median(loop) / statistics.median(vec):.0f}× faster"
    )


if __name__ == "__main__":
    main()
