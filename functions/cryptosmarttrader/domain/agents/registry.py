"""The agents, how to run them all on one market state, and each regime's strategy weights.

``run_agents(state, asof_ms)`` returns every agent's rows in ``VOTE_SCHEMA`` (one row per agent
and universe symbol: a vote or an abstention with its reason). The ensemble weighs them with
:data:`REGIME_STRATEGIES` for the regime :func:`detect_regime` finds, and drops every coin the
liquidity gate vetoes (:func:`cryptosmarttrader.domain.agents.liquidity.vetoed`).

Symbols: votes are keyed by the universe's symbols (CoinGecko ids such as ``bitcoin``). Venue
frames (tickers, funding, mark, spot) carry pair symbols (``BTC/USDT``); ``MarketState.aliases``
maps those to universe symbols. A pair without an alias is not guessed: its coin abstains
("no perpetual funding data", "fewer than two venues quote it").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents import arbitrage, early_mover, funding, liquidity, sentiment
from cryptosmarttrader.domain.agents import technical as technical_agent
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, empty_votes
from cryptosmarttrader.domain.agents.regime import Regime, RegimeConfig, RegimeReading, regime_at
from cryptosmarttrader.domain.agents.sentiment import SentimentReading
from cryptosmarttrader.domain.market import TIMEFRAME_MS

__all__ = [
    "AGENTS",
    "REGIME_STRATEGIES",
    "UNKNOWN_REGIME_STRATEGY",
    "AgentConfigs",
    "AgentInputs",
    "AgentSpec",
    "MarketState",
    "RegimeStrategy",
    "detect_regime",
    "run_agents",
    "strategy_for",
]


@dataclass(frozen=True, slots=True)
class MarketState:
    """The frames available as of t. Rows after ``asof_ms`` are cut by :func:`run_agents`."""

    universe: pl.DataFrame  # DAILY_SCHEMA, quality-gated
    ohlcv: pl.DataFrame | None = None  # spot OHLCV_SCHEMA (pair symbols) of ``ohlcv_tf``
    ohlcv_tf: str = "1d"
    tickers: pl.DataFrame | None = None  # arbitrage.TICKER_SCHEMA
    # arbitrage.WITHDRAWAL_SCHEMA: each venue's withdrawal/deposit state, fee and minimum per
    # coin; None when the source has none (``withdrawals_unavailable`` says why)
    withdrawals: pl.DataFrame | None = None
    withdrawals_unavailable: str | None = None
    # venue → why its withdrawal constraints could not be read (stated by the ingest)
    withdrawals_missing: Mapping[str, str] = field(default_factory=dict)
    funding: pl.DataFrame | None = None  # funding.FUNDING_SCHEMA
    mark: pl.DataFrame | None = None  # perpetual mark-price OHLCV_SCHEMA, 8h
    depth: pl.DataFrame | None = None  # liquidity.DEPTH_SCHEMA
    sentiment: tuple[SentimentReading, ...] | None = None
    sentiment_unavailable: str | None = None  # why ``sentiment`` is None
    aliases: Mapping[str, str] = field(default_factory=dict)  # pair → universe symbol
    # agent → universe symbol → why its input is missing (stated by whoever built the state):
    # replaces that agent's generic abstention reason for that symbol; never turns a vote off
    abstain_notes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfigs:
    technical: technical_agent.TechnicalConfig = field(
        default_factory=technical_agent.TechnicalConfig
    )
    early_mover: early_mover.EarlyMoverConfig = field(default_factory=early_mover.EarlyMoverConfig)
    liquidity: liquidity.LiquidityConfig = field(default_factory=liquidity.LiquidityConfig)
    funding: funding.FundingConfig = field(default_factory=funding.FundingConfig)
    arbitrage: arbitrage.ArbitrageConfig = field(default_factory=arbitrage.ArbitrageConfig)
    sentiment: sentiment.SentimentConfig = field(default_factory=sentiment.SentimentConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)


AgentFn = Callable[["AgentInputs", AgentConfigs], pl.DataFrame]


@dataclass(frozen=True, slots=True)
class AgentInputs:
    """What every agent function receives: the state, the as-of and the universe cut at it."""

    state: MarketState
    asof_ms: int
    universe: pl.DataFrame
    symbols: list[str]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    run: AgentFn
    directional: bool  # False: a gate whose rows are all abstentions (liquidity)


def _upto(
    frame: pl.DataFrame | None, asof_ms: int, aliases: Mapping[str, str]
) -> pl.DataFrame | None:
    if frame is None:
        return None
    out = frame.filter(pl.col("ts") <= asof_ms)
    if aliases:
        out = out.with_columns(
            symbol=pl.col("symbol").replace_strict(dict(aliases), default=pl.col("symbol"))
        )
    return out


def _technical(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    return technical_agent.technical_votes(i.universe, i.asof_ms, c.technical)


def _early_mover(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    return early_mover.early_mover_votes(i.universe, i.asof_ms, c.early_mover)


def _liquidity(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    depth = _upto(i.state.depth, i.asof_ms, i.state.aliases)
    return liquidity.liquidity_votes(i.universe, i.asof_ms, depth, c.liquidity)


def _funding(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    s = i.state
    cfg = c.funding
    if s.ohlcv is not None:
        cfg = replace(cfg, spot_tf_ms=TIMEFRAME_MS[s.ohlcv_tf])
    return funding.funding_votes(
        i.symbols,
        i.asof_ms,
        _upto(s.funding, i.asof_ms, s.aliases),
        _upto(s.mark, i.asof_ms, s.aliases),
        _upto(s.ohlcv, i.asof_ms, s.aliases),
        cfg,
    )


def _arbitrage(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    return arbitrage.arbitrage_votes(
        i.symbols,
        i.asof_ms,
        _upto(i.state.tickers, i.asof_ms, i.state.aliases),
        c.arbitrage,
        _upto(i.state.withdrawals, i.asof_ms, i.state.aliases),
        i.state.withdrawals_unavailable,
        i.state.withdrawals_missing,
    )


def _sentiment(i: AgentInputs, c: AgentConfigs) -> pl.DataFrame:
    s = i.state
    return sentiment.sentiment_votes(
        i.symbols, i.asof_ms, s.sentiment, s.sentiment_unavailable, c.sentiment
    )


AGENTS: Final[tuple[AgentSpec, ...]] = (
    AgentSpec(technical_agent.AGENT, _technical, directional=True),
    AgentSpec(early_mover.AGENT, _early_mover, directional=True),
    AgentSpec(funding.AGENT, _funding, directional=True),
    AgentSpec(arbitrage.AGENT, _arbitrage, directional=True),
    AgentSpec(sentiment.AGENT, _sentiment, directional=True),
    AgentSpec(liquidity.AGENT, _liquidity, directional=False),
)


def run_agents(
    state: MarketState,
    asof_ms: int,
    configs: AgentConfigs | None = None,
    *,
    only: Collection[str] | None = None,
) -> pl.DataFrame:
    """Every agent's votes for the universe at ``asof_ms`` in one ``VOTE_SCHEMA`` frame
    (``only``: just the agents named there, e.g. those a replay cannot compute per series)."""
    configs = configs or AgentConfigs()
    universe = state.universe.filter(pl.col("ts") <= asof_ms)
    if universe.is_empty():
        return empty_votes()
    inputs = AgentInputs(state, asof_ms, universe, universe["symbol"].unique().sort().to_list())
    frames = [
        _noted(spec.run(inputs, configs).cast(VOTE_SCHEMA), state.abstain_notes.get(spec.name))  # type: ignore[arg-type]
        for spec in AGENTS
        if only is None or spec.name in only
    ]
    if not frames:
        return empty_votes()
    return pl.concat(frames, how="vertical")


def _noted(votes: pl.DataFrame, notes: Mapping[str, str] | None) -> pl.DataFrame:
    """``votes`` with each abstaining symbol's reason replaced by its note, when one is given."""
    if not notes:
        return votes
    note = pl.col("symbol").replace_strict(dict(notes), default=None, return_dtype=pl.String)
    return votes.with_columns(
        abstain_reason=pl.when(pl.col("abstain_reason").is_not_null() & note.is_not_null())
        .then(note)
        .otherwise(pl.col("abstain_reason"))
    )


# ------------------------------------------------------------------------------ regimes


@dataclass(frozen=True, slots=True)
class RegimeStrategy:
    """How the ensemble leans on each directional agent in a regime, and how much to risk.

    ``weights`` sum to 1 over the directional agents; ``exposure`` scales position sizes (1 =
    the RiskGuard's normal size). Agents not listed (e.g. a model-based predictor added by the
    ensemble) are the ensemble's to weigh.
    """

    weights: Mapping[str, float]
    exposure: float
    rationale: str


def _w(tech: float, early: float, fund: float, arb: float, sent: float) -> Mapping[str, float]:
    return MappingProxyType(
        {
            technical_agent.AGENT: tech,
            early_mover.AGENT: early,
            funding.AGENT: fund,
            arbitrage.AGENT: arb,
            sentiment.AGENT: sent,
        }
    )


# Priors set by reasoning about each regime, not fitted: the walk-forward evaluation is where
# they are tested and, if the data says so, replaced.
REGIME_STRATEGIES: Final[Mapping[Regime, RegimeStrategy]] = MappingProxyType(
    {
        Regime.BULL_TREND: RegimeStrategy(
            _w(0.30, 0.35, 0.15, 0.10, 0.10),
            1.0,
            "momentum and early movers pay in trends; funding warns of crowding",
        ),
        Regime.BEAR_TREND: RegimeStrategy(
            _w(0.35, 0.10, 0.25, 0.15, 0.15),
            0.5,
            "trend filter first; few small caps rally in a bear market",
        ),
        Regime.SIDEWAYS: RegimeStrategy(
            _w(0.20, 0.25, 0.20, 0.20, 0.15), 0.75, "no dominant driver: spread the weight"
        ),
        Regime.HIGH_VOLATILITY: RegimeStrategy(
            _w(0.15, 0.10, 0.30, 0.25, 0.20),
            0.5,
            "positioning and dislocations matter more than trend signals that whipsaw",
        ),
        Regime.LOW_VOL_SQUEEZE: RegimeStrategy(
            _w(0.25, 0.35, 0.20, 0.10, 0.10),
            0.75,
            "quiet markets precede breakouts: early accumulation is the tell",
        ),
        Regime.CRASH: RegimeStrategy(
            _w(0.10, 0.05, 0.35, 0.15, 0.35),
            0.25,
            "capitulation readings (funding, extreme fear) are the only useful signals",
        ),
    }
)

UNKNOWN_REGIME_STRATEGY: Final = RegimeStrategy(
    _w(0.2, 0.2, 0.2, 0.2, 0.2), 0.5, "regime unknown: equal weights, half size"
)


def detect_regime(
    state: MarketState, asof_ms: int, config: RegimeConfig | None = None
) -> RegimeReading:
    """The market regime at ``asof_ms`` from the state's universe (cap-weighted index)."""
    return regime_at(state.universe, asof_ms, config or RegimeConfig())


def strategy_for(reading: RegimeReading) -> RegimeStrategy:
    """The regime's strategy, or the explicit unknown-regime one when no regime is known."""
    return UNKNOWN_REGIME_STRATEGY if reading.regime is None else REGIME_STRATEGIES[reading.regime]
