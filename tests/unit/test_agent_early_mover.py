"""Early-mover scout on a tiny hand-written universe (scope, abstentions, ranking direction).

Its claim about finding 100 % gainers is tested on real data in
tests/integration/test_agents_realdata.py.
"""

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.early_mover import EarlyMoverConfig, early_mover_votes
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS

T0 = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS
N = 70
ASOF = T0 + (N - 1) * DAY_MS


def _coin(
    symbol: str,
    cap: float,
    *,
    bars: int = N,
    volume_from: float = 1e6,
    volume_to: float = 1e6,
    growth: float = 0.0,
    last_cap: float | None = None,
    end: int = ASOF,
) -> pl.DataFrame:
    ts = [end - (bars - 1 - i) * DAY_MS for i in range(bars)]
    volume = [volume_from if i < bars - 7 else volume_to for i in range(bars)]
    # flat, then compounding ``growth`` a day over the last 30 bars (market cap follows)
    close = [(1 + growth) ** max(0, i - (bars - 31)) for i in range(bars)]
    caps: list[float | None] = [cap * c for c in close]
    if last_cap is not None or symbol.startswith("nocap"):
        caps[-1] = last_cap
    return pl.DataFrame(
        {"symbol": symbol, "ts": ts, "close": close, "volume": volume, "market_cap": caps},
        schema=DAILY_SCHEMA,
    )


def _universe() -> pl.DataFrame:
    big = [_coin(f"big{i:02d}", 1e12 - i * 1e9) for i in range(2)]
    return pl.concat(
        [
            *big,
            _coin("hot", 1e6, volume_from=1e5, volume_to=1e6, growth=0.01),
            _coin("cold", 1e7, volume_from=1e6, volume_to=1e5, growth=-0.01),
            _coin("flat", 5e6),
            _coin("newborn", 2e6, bars=10),
            _coin("nocap", 3e6),
            _coin("gone", 4e6, bars=N - 5, end=ASOF - 5 * DAY_MS),
        ]
    )


def test_scope_and_abstentions_name_their_reason() -> None:
    # Given two large caps (top 2) and coins that are too new, without a cap or without a bar
    votes = early_mover_votes(_universe(), ASOF, EarlyMoverConfig(exclude_top=2))
    reasons = dict(votes.select("symbol", "abstain_reason").iter_rows())
    assert reasons["big00"] == "large cap (rank 1 by market cap ≤ 2): outside the early-mover scope"
    assert reasons["newborn"] == "too new to measure: 10 daily bars < 35"
    assert reasons["nocap"] == "market cap unknown at the as-of date: size cannot be judged"
    assert reasons["gone"].startswith("no bar at the as-of date")
    assert votes.schema == pl.Schema(VOTE_SCHEMA)


def test_small_accelerating_outperformer_ranks_above_a_decelerating_laggard() -> None:
    votes = early_mover_votes(_universe(), ASOF, EarlyMoverConfig(exclude_top=2))
    p = dict(votes.select("symbol", "probability").iter_rows())
    # Given "hot" is the smallest, with 10× volume and rising, and "cold" the opposite
    assert p["hot"] > 0.5 > p["cold"]
    assert p["hot"] > p["flat"] > p["cold"]
    hot = votes.filter(pl.col("symbol") == "hot").row(0, named=True)
    assert "volume 7d/28d ×10.0 (pctl 100)" in hot["reasons"]
    assert "market-cap acceleration 0.299 (pctl 100)"  # 30 · ln 1.01 in hot["reasons"]
    # And coins present since the frame starts have an unknown listing age, never assumed new
    assert hot["reasons"][-1] == "listing age unknown (present since the frame starts)"


def test_rows_after_asof_never_change_the_vote() -> None:
    frame = _universe()
    # Given rows after the as-of with a volume explosion and a collapse in market cap
    later = frame.with_columns(
        ts=pl.col("ts") + N * DAY_MS, volume=pl.col("volume") * 100, market_cap=pl.lit(1.0)
    ).filter(pl.col("ts") > ASOF)
    cfg = EarlyMoverConfig(exclude_top=2)
    assert early_mover_votes(pl.concat([frame, later]), ASOF, cfg).equals(
        early_mover_votes(frame, ASOF, cfg)
    )
