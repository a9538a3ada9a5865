"""All agents on the recorded real data: regimes of known market events, the early-mover lift
toward 100 % gainers, funding on real Binance perpetual data, and run_agents over the universe.

Survivorship bias: the CoinGecko coin list was chosen in 2025 from coins alive then, so hit rates
below are higher than a live scan would have seen; the comparison between score deciles is the
claim, not the level.
"""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.early_mover import early_mover_votes
from cryptosmarttrader.domain.agents.funding import funding_votes
from cryptosmarttrader.domain.agents.liquidity import vetoed
from cryptosmarttrader.domain.agents.regime import Regime, regime_at, regime_timeline
from cryptosmarttrader.domain.agents.registry import AGENTS, MarketState, run_agents
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily

pytestmark = pytest.mark.realdata


def _ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@pytest.fixture(scope="module")
def universe(market: RecordedMarketData) -> pl.DataFrame:
    """Every coin except stablecoins and wrapped tokens (as the scan trades)."""
    meta = market.coins_metadata()
    excluded = [k for k, v in meta.items() if v.is_stablecoin or v.is_wrapped]
    return market.daily_all().filter(~pl.col("symbol").is_in(excluded))


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ((2020, 3, 13), Regime.CRASH),  # COVID crash, index -46 % in 7 days
        ((2021, 5, 20), Regime.CRASH),  # May 2021 deleveraging
        ((2022, 6, 14), Regime.CRASH),  # Celsius / 3AC
        ((2022, 11, 10), Regime.CRASH),  # FTX
        ((2017, 12, 10), Regime.BULL_TREND),
        ((2021, 1, 5), Regime.BULL_TREND),
        ((2018, 6, 1), Regime.BEAR_TREND),
    ],
)
def test_known_market_events_get_their_regime(
    universe: pl.DataFrame, day: tuple[int, int, int], expected: Regime
) -> None:
    reading = regime_at(universe, _ms(*day))
    assert reading.regime is expected, reading.reason


def test_timeline_covers_all_six_regimes_and_uses_no_future_rows(universe: pl.DataFrame) -> None:
    # Given the 2014–2023 timeline
    timeline = regime_timeline(universe, _ms(2014, 1, 1), _ms(2023, 12, 31))
    counts = dict(timeline.group_by("regime").len().iter_rows())
    # Then every regime occurs, crashes are rare and every day is classified
    assert set(counts) == {r.value for r in Regime}
    assert counts[Regime.CRASH.value] < 0.08 * timeline.height
    assert timeline["regime"].null_count() == 0
    # And a day's regime is the same whether or not later rows exist
    day = _ms(2021, 5, 20)
    cut = regime_timeline(universe.filter(pl.col("ts") <= day), day, day)
    full = timeline.filter(pl.col("ts") == day)
    assert cut["regime"].to_list() == full["regime"].to_list()
    # (index sums run in parallel: equal up to float rounding)
    assert cut["vol_ratio"].to_list() == pytest.approx(full["vol_ratio"].to_list(), rel=1e-12)


def test_early_mover_top_decile_beats_bottom_decile_on_100pct_gainers(
    universe: pl.DataFrame,
) -> None:
    # Given monthly scans 2017–2023 on the quality-gated 260-day window
    rows = []
    for asof in range(_ms(2017, 1, 1), _ms(2023, 6, 1), 30 * DAY_MS):
        window = universe.filter((pl.col("ts") > asof - 260 * DAY_MS) & (pl.col("ts") <= asof))
        clean = check_daily(window, asof).clean
        votes = early_mover_votes(clean, asof).filter(pl.col("probability").is_not_null())
        future = (
            universe.filter((pl.col("ts") > asof) & (pl.col("ts") <= asof + 180 * DAY_MS))
            .group_by("symbol")
            .agg(best=pl.col("close").max())
        )
        now = clean.filter(pl.col("ts") == asof).select("symbol", "close")
        rows.append(
            votes.join(now, on="symbol")
            .join(future, on="symbol")
            .with_columns(
                doubled=pl.col("best") / pl.col("close") >= 2.0,
                decile=(pl.col("probability").rank() * 10 / (pl.len() + 1)).floor(),
            )
        )
    scored = pl.concat(rows)
    assert scored.height > 5_000
    hit = dict(scored.group_by("decile").agg(pl.col("doubled").mean()).iter_rows())
    # Then coins the scout ranks highest doubled within 180 days clearly more often
    assert hit[9.0] > hit[0.0] + 0.08
    assert hit[9.0] > scored["doubled"].mean()


def test_funding_agent_on_real_binance_perpetual_data(market: RecordedMarketData) -> None:
    asof = datetime(2022, 3, 1, tzinfo=UTC)
    asof_ms = _ms(2022, 3, 1)
    start = datetime(2021, 9, 1, tzinfo=UTC)
    votes = funding_votes(
        ["BTC/USDT", "ETH/USDT"],
        asof_ms,
        market.funding_rates("BTC/USDT", start, asof),
        market.mark_prices("BTC/USDT", start, asof),
        market.ohlcv_all("1d", asof).filter(pl.col("symbol") == "BTC/USDT"),
    )
    btc = votes.filter(pl.col("symbol") == "BTC/USDT").row(0, named=True)
    # Then BTC gets a vote with a measured basis; ETH, without perpetual data, abstains
    assert btc["abstain_reason"] is None
    assert btc["reasons"][1].startswith("perp mark vs spot basis")
    assert votes.filter(pl.col("symbol") == "ETH/USDT")["abstain_reason"][0] == (
        "no perpetual funding data for this coin"
    )
    # And after the recorded funding ends (2022-07-30) the agent says the data is stale
    late = funding_votes(
        ["BTC/USDT"], _ms(2022, 9, 1), market.funding_rates("BTC/USDT", start, asof)
    )
    assert late["abstain_reason"][0].startswith("funding is stale")


@pytest.fixture(scope="module")
def scan_state(market: RecordedMarketData, universe: pl.DataFrame) -> tuple[MarketState, int]:
    asof = datetime(2022, 3, 1, tzinfo=UTC)
    asof_ms = _ms(2022, 3, 1)
    window = universe.filter((pl.col("ts") > asof_ms - 400 * DAY_MS) & (pl.col("ts") <= asof_ms))
    start = datetime(2021, 9, 1, tzinfo=UTC)
    state = MarketState(
        universe=check_daily(window, asof_ms).clean,
        ohlcv=market.ohlcv_all("1d", asof),
        funding=market.funding_rates("BTC/USDT", start, asof),
        mark=market.mark_prices("BTC/USDT", start, asof),
        aliases={"BTC/USDT": "bitcoin"},
    )
    return state, asof_ms


def test_run_agents_gives_one_row_per_agent_and_symbol(scan_state: tuple[MarketState, int]) -> None:
    state, asof_ms = scan_state
    votes = run_agents(state, asof_ms)
    symbols = state.universe["symbol"].n_unique()
    assert votes.schema == pl.Schema(VOTE_SCHEMA)
    assert votes.height == len(AGENTS) * symbols
    assert votes.select("agent", "symbol").is_unique().all()
    # Every row is a vote with probability and confidence in [0, 1] or an abstention with reason
    voted = votes.filter(pl.col("abstain_reason").is_null())
    assert voted.select(
        pl.col("probability").is_between(0, 1).all(), pl.col("confidence").is_between(0, 1).all()
    ).row(0) == (True, True)
    assert votes.filter(pl.col("abstain_reason").is_not_null())["probability"].null_count() == (
        votes.height - voted.height
    )
    # The BTC perpetual reaches bitcoin through its alias; thin coins are vetoed with a reason
    btc_funding = votes.filter((pl.col("agent") == "funding") & (pl.col("symbol") == "bitcoin"))
    assert btc_funding["probability"][0] is not None
    assert vetoed(votes).height > 10
    # Without a sentiment source and without tickers those agents abstain for every coin
    for agent in ("sentiment", "arbitrage"):
        assert votes.filter(pl.col("agent") == agent)["probability"].null_count() == symbols


def test_rows_after_asof_never_change_any_vote(
    market: RecordedMarketData, scan_state: tuple[MarketState, int], universe: pl.DataFrame
) -> None:
    state, asof_ms = scan_state
    later = datetime(2022, 6, 1, tzinfo=UTC)
    tampered = MarketState(
        universe=pl.concat(
            [
                state.universe,
                universe.filter(
                    (pl.col("ts") > asof_ms)
                    & (pl.col("ts") <= _ms(2022, 6, 1))
                    & pl.col("symbol").is_in(state.universe["symbol"].unique().to_list())
                ),
            ]
        ),
        ohlcv=market.ohlcv_all("1d", later),
        funding=market.funding_rates("BTC/USDT", datetime(2021, 9, 1, tzinfo=UTC), later),
        mark=market.mark_prices("BTC/USDT", datetime(2021, 9, 1, tzinfo=UTC), later),
        aliases=state.aliases,
    )
    assert run_agents(tampered, asof_ms).equals(run_agents(state, asof_ms))
