"""Walk-forward evaluation use case (`cst evaluate`): the scan's own steps, replayed on a grid of
past decision days, scored against what really happened afterwards.

Per decision day ``d`` (every ``step_days``), exactly as the scan: the ``lookback_days`` window up
to ``d`` → quality gate → agents on the clean coins. Features come from the one feature module
(identical to serving), labels from :func:`forward_gain_labels` (null where the horizon is not
observed).

Fitting never sees anything after ``train_end``: the ML agent and the ensemble are fitted only
on samples whose whole label window ends on or before ``train_end``; inside that set, out-of-
sample predictions come from expanding walk-forward folds with purge and embargo, and the
ensemble calibration is fitted on those out-of-sample predictions only. The reported metrics
cover decision days in ``[start, end]`` (``start`` after ``train_end`` + embargo).

The agents that need more than the daily universe (funding, arbitrage, sentiment) vote on a
replayed day only when ``agent_data`` is given: the scan's own reader (``AgentData``, e.g. the
recorded folder's :class:`~cryptosmarttrader.adapters.recorded_agent_data.RecordedAgentData`)
builds their market state as of each decision day exactly as ``cst scan --asof`` does, so they
see no funding reading, Fear & Greed value or venue candle of a later time. Without it they
abstain on every row and the ensemble learns nothing from them. :func:`fit_ensemble` is the fit
alone (`cst model fit-ensemble`): it reads no price, volume or side data after ``train_end``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.agents import arbitrage, funding, sentiment
from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.ml_predictor import AGENT as ML_AGENT
from cryptosmarttrader.domain.agents.ml_predictor import ml_votes
from cryptosmarttrader.domain.agents.registry import AGENTS, run_agents
from cryptosmarttrader.domain.agents.series_votes import votes_on_days
from cryptosmarttrader.domain.agents.technical import AGENT as TECHNICAL_AGENT
from cryptosmarttrader.domain.ensemble import (
    EnsembleModel,
    agent_matrix,
    fit_ensemble_walk_forward,
)
from cryptosmarttrader.domain.evaluation import (
    BACKTEST_COST_RATE,
    auc,
    base_rate,
    brier,
    calibration_curve,
    ece,
    forward_gain_labels,
    hit_rate_by_decile,
    label_column,
    lift,
    portfolio_stats,
    precision_at_k,
    purged_train_mask,
    simulate_portfolio,
    walk_forward_folds,
)
from cryptosmarttrader.domain.exit_rule import (
    DEFAULT_EXIT_RULE,
    ExitOutcomes,
    ExitRule,
    exit_outcomes,
    marked_paths,
)
from cryptosmarttrader.domain.features import FEATURE_COLUMNS, feature_frame
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.ranking import RankedSignal
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.ports import AgentData, MarketData, Predictor, PredictorTrainer, Progress
from cryptosmarttrader.services.progress import no_progress
from cryptosmarttrader.services.scan import ScanAnalyzer

SURVIVORSHIP_NOTE = (
    "Survivorship bias: the CoinGecko coin list was chosen in 2025 from coins alive then; coins "
    "that died before 2025 are missing, so hit rates, lifts and returns here are biased upward "
    "(dead coins would have been losers the model could have picked)."
)
BTC = "bitcoin"
REPLAY_STEP = "replay decision days"  # progress steps (services/progress.py)
FIT_STEP = "fit targets"
BACKTEST_STEP = "scan decision days"

# agents: (history, the coins voted on each decision day: day, symbol, ts) -> their votes in
# VOTE_SCHEMA; each series computed once and read on each day (domain/agents/series_votes.py)
AgentRunner = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
RegimeTimeline = Callable[[pl.DataFrame, int, int], pl.DataFrame]


def technical_only(history: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    return votes_on_days(history, at).filter(pl.col("agent") == TECHNICAL_AGENT)


DIRECTIONAL_AGENTS: tuple[str, ...] = tuple(s.name for s in AGENTS if s.directional)
# the directional agents that read the side data (``AgentData``) rather than the daily universe
SIDE_DATA_AGENTS: tuple[str, ...] = (funding.AGENT, arbitrage.AGENT, sentiment.AGENT)


def registry_agents(history: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """The registry's directional agents that vote on the daily universe (technical, early
    mover), as the scan runs them. The agents needing side data (funding, arbitrage,
    sentiment) vote through ``agent_data`` (:func:`evaluate`, :func:`fit_ensemble`); without
    it they abstain, and abstentions add nothing to the ensemble."""
    return votes_on_days(history, at).filter(pl.col("agent").is_in(DIRECTIONAL_AGENTS))


def _side_votes(agent_data: AgentData, universe: pl.DataFrame, asof_ms: int) -> pl.DataFrame:
    """The side-data agents' votes on ``universe`` (the day's quality-gated window) as of
    ``asof_ms``: the scan's own reader and agents, nothing read after ``asof_ms``."""
    return run_agents(agent_data.state(universe, asof_ms), asof_ms, only=SIDE_DATA_AGENTS)


class EvaluationError(ValueError):
    """The evaluation request cannot be run as asked (dates, too little data)."""


def _day(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) // 86_400


class EvaluationConfig(BaseModel):
    """Every parameter of a run (echoed in the JSON so a figure can be reproduced)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_end: date
    start: date
    end: date
    horizon_days: int = Field(default=180, ge=1, le=730)
    top_k: int = Field(default=20, ge=1)
    thresholds: tuple[float, ...] = (1.0, 5.0)
    primary_threshold: float = 1.0  # the event the scan's ensemble is calibrated to
    first_decision: date = date(2014, 1, 1)
    step_days: int = Field(default=7, ge=1)
    fold_days: int = Field(default=182, ge=7)
    min_train_days: int = Field(default=365, ge=30)
    embargo_days: int = Field(default=7, ge=0)
    lookback_days: int = Field(default=260, ge=200)  # the scan's window
    rebalance_days: int = Field(default=28, ge=1)
    fee_bps: float = Field(default=10.0, ge=0)
    slippage_bps: float = Field(default=20.0, ge=0)
    calibration: Literal["platt", "isotonic"] = "platt"
    confidence_gate: float = Field(default=0.8, ge=0, le=1)
    # tradable: a reported market cap that day and this 30-day mean USD volume (all strategies)
    min_volume_usd: float = Field(default=100_000.0, ge=0)

    @model_validator(mode="after")
    def _dates(self) -> EvaluationConfig:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if _day(self.start) <= _day(self.train_end) + self.embargo_days:
            raise ValueError(
                f"start {self.start} must be more than the embargo ({self.embargo_days} days) "
                f"after train_end {self.train_end}"
            )
        if self.primary_threshold not in self.thresholds:
            raise ValueError("primary_threshold must be one of thresholds")
        return self


@dataclass(frozen=True)
class FittedTarget:
    """What was fitted for one gain threshold, using nothing after train_end."""

    threshold: float
    ensemble: EnsembleModel
    ml_final: Predictor
    fit_rows: int
    ml_oos_rows: int
    ensemble_oos_rows: int


@dataclass
class EvaluationResult:
    summary: dict[str, Any]
    fitted: dict[float, FittedTarget]
    equity: pl.DataFrame  # day, strategy, equity
    calibration: pl.DataFrame  # bins of the primary target on the test period
    deciles: pl.DataFrame  # hit rate by score decile (primary target)
    regimes: pl.DataFrame | None
    samples: pl.DataFrame = field(repr=False)  # test rows with scores and labels


# ------------------------------------------------------------------------------ data prep
def _decision_days(cfg: EvaluationConfig) -> list[int]:
    start, first, end = _day(cfg.start), _day(cfg.first_decision), _day(cfg.end)
    back = (start - first) // cfg.step_days
    return list(range(start - back * cfg.step_days, end + 1, cfg.step_days))


def _replay(
    history: pl.DataFrame,
    days: Sequence[int],
    lookback: int,
    agents: AgentRunner,
    progress: Progress = no_progress,
    agent_data: AgentData | None = None,
    side_until: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per decision day: window → quality gate (and, with ``agent_data``, the side-data agents
    on the day's passing coins as of the day, up to the day ``side_until``); then the series
    agents on every day's passing coins at once. Returns (eligible rows, votes)."""
    eligible: list[pl.DataFrame] = []
    side: list[pl.DataFrame] = []
    ts = history["ts"]
    for done, day in enumerate(days):  # one step per decision day, vectorized over the universe
        progress(REPLAY_STEP, done, len(days))
        asof_ms = day * DAY_MS
        lo = int(ts.search_sorted((day - lookback) * DAY_MS, side="right"))
        hi = int(ts.search_sorted(asof_ms + DAY_MS - 1, side="right"))
        window = history.slice(lo, hi - lo)
        if window.is_empty():
            continue
        clean = check_daily(window, asof_ms).clean
        today = clean.filter(pl.col("ts") // DAY_MS == day).select("symbol", "ts")
        if today.is_empty():
            continue
        eligible.append(today.with_columns(day=pl.lit(day, pl.Int64)))
        if agent_data is not None and (
            side_until is None or day <= side_until
        ):  # keyed like the series votes: the coin's bar of the day
            coins = clean.filter(pl.col("symbol").is_in(today["symbol"].implode()))
            side.append(
                _side_votes(agent_data, coins, asof_ms)
                .drop("ts")
                .join(today, on="symbol", how="inner")
                .select(*VOTE_SCHEMA)
            )
    progress(REPLAY_STEP, len(days), len(days))
    if not eligible:
        raise EvaluationError("no decision day has any coin passing the quality gate")
    at = pl.concat(eligible)
    votes = agents(history, at).select(*VOTE_SCHEMA)
    if side:
        votes = pl.concat([votes.cast(VOTE_SCHEMA), *(v.cast(VOTE_SCHEMA) for v in side)])  # type: ignore[arg-type]
    return at, votes


# ------------------------------------------------------------------------------ fitting
def _ml_oos(
    samples: pl.DataFrame,
    fit_mask: np.ndarray,
    label: str,
    trainer: PredictorTrainer,
    cfg: EvaluationConfig,
) -> tuple[pl.DataFrame, Predictor, int, int]:
    """ML votes: walk-forward OOS on the fitting period, final model on the rest."""
    x = samples.select(pl.col(c).fill_null(np.nan) for c in FEATURE_COLUMNS).to_numpy()
    y = samples[label].fill_null(-1).to_numpy().astype(np.float64)
    day = samples["day"].to_numpy().astype(np.int64)
    end_day = samples["label_end_day"].to_numpy().astype(np.int64)
    train_end = _day(cfg.train_end)
    fit_days = day[fit_mask]
    if fit_days.size == 0:
        raise EvaluationError(f"no sample has a label known by train_end {cfg.train_end}")
    first_oos = int(fit_days.min()) + cfg.min_train_days + cfg.horizon_days + cfg.embargo_days
    votes: list[pl.DataFrame] = []
    oos_rows = 0
    for fold in walk_forward_folds(first_oos, train_end, cfg.fold_days):
        test = (day >= fold.test_start_day) & (day <= fold.test_end_day)
        train = fit_mask & purged_train_mask(day, end_day, fold.test_start_day, cfg.embargo_days)
        if not test.any() or train.sum() < 200 or len(np.unique(y[train])) < 2:
            continue
        model = trainer.fit(x[train], y[train], FEATURE_COLUMNS)
        votes.append(ml_votes(samples.filter(pl.Series(test)), model))
        oos_rows += int(test.sum())
    if len(np.unique(y[fit_mask])) < 2:
        raise EvaluationError(f"labels {label} known by train_end hold a single outcome")
    final = trainer.fit(x[fit_mask], y[fit_mask], FEATURE_COLUMNS)
    later = day > train_end
    votes.append(ml_votes(samples.filter(pl.Series(later)), final))
    return pl.concat(votes), final, oos_rows, first_oos


def _fit_target(
    samples: pl.DataFrame,
    votes: pl.DataFrame,
    agents: Sequence[str],
    threshold: float,
    trainer: PredictorTrainer,
    cfg: EvaluationConfig,
) -> tuple[FittedTarget, np.ndarray]:
    label = label_column(threshold)
    train_end = _day(cfg.train_end)
    known = samples[label].is_not_null().to_numpy() & (
        samples["label_end_day"].to_numpy() <= train_end
    )
    ml, final, ml_oos_rows, first_oos = _ml_oos(samples, known, label, trainer, cfg)
    all_votes = pl.concat([votes, ml])
    _, x = agent_matrix(all_votes, agents, samples.select("symbol", "ts"))
    day = samples["day"].to_numpy().astype(np.int64)
    # the ensemble learns from rows where the ML agent's vote was out-of-sample
    ens_mask = known & (day >= first_oos)
    if ens_mask.sum() < 100:
        raise EvaluationError(
            f"only {int(ens_mask.sum())} out-of-sample rows before train_end {cfg.train_end}: "
            "move train_end later or first_decision earlier"
        )
    y = samples[label].to_numpy().astype(np.float64)
    target = f"gain >= {threshold:.0%} within {cfg.horizon_days} days"
    fit = fit_ensemble_walk_forward(
        agents,
        x[ens_mask],
        y[ens_mask],
        day[ens_mask],
        samples["label_end_day"].to_numpy().astype(np.int64)[ens_mask],
        # first block whose purged past already holds out-of-sample ML rows
        walk_forward_folds(
            first_oos + cfg.horizon_days + cfg.embargo_days + cfg.step_days,
            train_end,
            cfg.fold_days,
        ),
        embargo_days=cfg.embargo_days,
        method=cfg.calibration,
        target=target,
    )
    voted_any = x[:, 1::2].sum(axis=1) > 0
    score = np.where(voted_any, fit.model.predict(x), np.nan)
    fitted = FittedTarget(threshold, fit.model, final, int(known.sum()), ml_oos_rows, fit.oos_rows)
    return fitted, score


# ------------------------------------------------------------------------------ portfolio
def _portfolio(
    history: pl.DataFrame, test: pl.DataFrame, score: str, cfg: EvaluationConfig
) -> tuple[dict[str, dict[str, float]], pl.DataFrame]:
    start, end = _day(cfg.start), _day(cfg.end)
    rebalance_days = sorted(test["day"].unique().to_list())[
        :: max(1, cfg.rebalance_days // cfg.step_days)
    ]
    if not rebalance_days or rebalance_days[0] != start:
        raise EvaluationError(f"no eligible coin on the first test day {cfg.start}")
    symbols = sorted(set(test["symbol"].unique().to_list()) | {BTC})
    col = {s: i for i, s in enumerate(symbols)}
    days = np.arange(start, end + 1, dtype=np.int64)
    px = (
        history.filter(pl.col("symbol").is_in(symbols))
        .with_columns(day=pl.col("ts") // DAY_MS)
        .filter((pl.col("day") >= start) & (pl.col("day") <= end) & (pl.col("close") > 0))
    )
    prices = np.full((days.size, len(symbols)), np.nan)
    prices[
        px["day"].to_numpy() - start,
        px["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy(),
    ] = px["close"].to_numpy()
    rows = np.asarray([d - start for d in rebalance_days], dtype=np.int64)
    at = test.filter(pl.col("day").is_in(rebalance_days))
    cost = (cfg.fee_bps + cfg.slippage_bps) / 10_000

    def weights(pick: pl.DataFrame, per_name: float | None) -> np.ndarray:
        w = np.zeros((rows.size, len(symbols)))
        if pick.height:
            n = pick.group_by("day").len()
            pick = pick.join(n, on="day")
            r = (
                pick["day"]
                .replace_strict({d: i for i, d in enumerate(rebalance_days)}, return_dtype=pl.Int64)
                .to_numpy()
            )
            c = pick["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy()
            w[r, c] = per_name if per_name is not None else 1.0 / pick["len"].to_numpy()
        return w

    def top(by: str) -> pl.DataFrame:
        ranked = at.filter(pl.col(by).is_not_null()).with_columns(
            _r=pl.col(by).rank("ordinal", descending=True).over("day")
        )
        return ranked.filter(pl.col("_r") <= cfg.top_k)

    gated = at.filter(pl.col(score) >= cfg.confidence_gate)
    btc = np.zeros((1, len(symbols)))
    btc_ok = np.isfinite(prices[0, col[BTC]])
    if btc_ok:
        btc[0, col[BTC]] = 1.0
    books = {
        "top_k": (rows, weights(top(score), None)),
        "gated_top_k": (
            rows,
            weights(top(score).filter(pl.col(score) >= cfg.confidence_gate), 1.0 / cfg.top_k),
        ),
        "btc_buy_hold": (rows[:1], btc),
        "equal_weight": (rows, weights(at, None)),
        "momentum_90d": (rows, weights(top("ret_90d"), None)),
    }
    out: dict[str, dict[str, float]] = {}
    curves: list[pl.DataFrame] = []
    for name, (r, w) in books.items():
        if name == "btc_buy_hold" and not btc_ok:
            continue
        sim = simulate_portfolio(prices, r, w, cost)
        stats = portfolio_stats(sim.equity, sim.turnover, sim.costs)
        out[name] = {
            "total_return": stats.total_return,
            "cagr": stats.cagr,
            "max_drawdown": stats.max_drawdown,
            "sharpe": stats.sharpe,
            "turnover": stats.turnover,
            "costs": stats.costs,
        }
        curves.append(pl.DataFrame({"day": days, "strategy": name, "equity": sim.equity}))
    out["gated_top_k"]["buy_signals"] = float(gated.height)
    return out, pl.concat(curves)


# ------------------------------------------------------------------------------ entry point
def _metrics(frame: pl.DataFrame, score: str, label: str, k: int) -> dict[str, float]:
    rows = frame.filter(pl.col(score).is_not_null() & pl.col(label).is_not_null())
    p = rows[score].to_numpy()
    y = rows[label].cast(pl.Float64).to_numpy()
    prec = precision_at_k(rows, score, label, k)
    rate = base_rate(rows, label)
    return {
        "n": float(rows.height),
        "base_rate": rate,
        "precision_at_k": prec,
        "lift": lift(prec, rate),
        "auc": auc(p, y),
        "brier": brier(p, y),
        "ece": ece(p, y),
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _samples(
    market: MarketData,
    cfg: EvaluationConfig,
    last_needed: datetime,
    excluded_symbols: Collection[str],
    agents: AgentRunner,
    agent_data: AgentData | None,
    progress: Progress,
    side_until: int | None = None,
) -> tuple[pl.DataFrame, list[int], pl.DataFrame, pl.DataFrame]:
    """The daily universe up to ``last_needed`` (nothing later is read), the decision days it
    covers, their samples (eligible rows with features and labels) and every agent's votes
    (the side-data agents' up to the day ``side_until``)."""
    span = (last_needed.date() - cfg.first_decision).days + cfg.lookback_days + 1
    history = (
        market.daily_universe(last_needed, span)
        .filter(~pl.col("symbol").is_in(list(excluded_symbols)))
        .sort("ts", "symbol")
    )
    if history.is_empty():
        raise EvaluationError("the market data holds no rows for the requested span")
    data_last_day = int(history["ts"].max()) // DAY_MS  # type: ignore[arg-type]
    days = [d for d in _decision_days(cfg) if d <= data_last_day]
    eligible, votes = _replay(
        history, days, cfg.lookback_days, agents, progress, agent_data, side_until
    )
    by_symbol = history.sort("symbol", "ts")
    features = feature_frame(by_symbol)
    labels = forward_gain_labels(by_symbol, cfg.horizon_days, cfg.thresholds)
    samples = (
        eligible.join(features.drop("day"), on=["symbol", "ts"], how="left")
        .join(labels.drop("day"), on=["symbol", "ts"], how="left")
        .join(history.select("symbol", "ts", "market_cap"), on=["symbol", "ts"], how="left")
        .filter(
            (pl.col("market_cap") > 0)
            & (pl.col("log_volume_30d") >= math.log1p(cfg.min_volume_usd))
        )
        .drop("market_cap")
        .sort("day", "symbol")
    )
    return history, days, samples, votes


def fit_ensemble(
    market: MarketData,
    trainer: PredictorTrainer,
    cfg: EvaluationConfig,
    *,
    excluded_symbols: Collection[str] = frozenset(),
    agents: AgentRunner = technical_only,
    agent_names: Sequence[str] = (TECHNICAL_AGENT,),
    agent_data: AgentData | None = None,
    progress: Progress = no_progress,
) -> FittedTarget:
    """The ML agent and the calibrated ensemble of ``cfg.primary_threshold``, fitted as
    :func:`evaluate` fits them, on the decision days up to ``cfg.train_end`` only: no price,
    volume, market cap or side data after ``train_end`` is read (``cfg.start``/``cfg.end``, the
    evaluation's test period, are not used). With ``agent_data`` the side-data agents vote on
    each replayed day as the scan would have seen it, on the days whose outcome is known by
    ``train_end`` (the only rows the ensemble is fitted on); the fitted stacker records per
    agent the training rows it voted on."""
    end = datetime(cfg.train_end.year, cfg.train_end.month, cfg.train_end.day, tzinfo=UTC)
    _, _, samples, votes = _samples(
        market,
        cfg,
        end,
        excluded_symbols,
        agents,
        agent_data,
        progress,
        side_until=_day(cfg.train_end) - cfg.horizon_days,
    )
    progress(FIT_STEP, 0, 1)
    fitted, _ = _fit_target(
        samples, votes, [*agent_names, ML_AGENT], cfg.primary_threshold, trainer, cfg
    )
    progress(FIT_STEP, 1, 1)
    return fitted


def evaluate(
    market: MarketData,
    trainer: PredictorTrainer,
    cfg: EvaluationConfig,
    *,
    excluded_symbols: Collection[str] = frozenset(),
    agents: AgentRunner = technical_only,
    agent_names: Sequence[str] = (TECHNICAL_AGENT,),
    regime_timeline: RegimeTimeline | None = None,
    progress: Progress = no_progress,
    agent_data: AgentData | None = None,
) -> EvaluationResult:
    """Run the walk-forward evaluation described in the module docstring."""
    last_needed = datetime(cfg.end.year, cfg.end.month, cfg.end.day, tzinfo=UTC) + timedelta(
        days=cfg.horizon_days
    )
    history, days, samples, votes = _samples(
        market, cfg, last_needed, excluded_symbols, agents, agent_data, progress
    )
    data_last_day = int(history["ts"].max()) // DAY_MS  # type: ignore[arg-type]
    by_symbol = history.sort("symbol", "ts")
    names = [*agent_names, ML_AGENT]
    fitted: dict[float, FittedTarget] = {}
    for done, t in enumerate(cfg.thresholds):
        progress(FIT_STEP, done, len(cfg.thresholds))
        fitted[t], score = _fit_target(samples, votes, names, t, trainer, cfg)
        progress(FIT_STEP, done + 1, len(cfg.thresholds))
        samples = samples.with_columns(pl.Series(f"score_{label_column(t)}", score))
    start, end = _day(cfg.start), _day(cfg.end)
    test = samples.filter((pl.col("day") >= start) & (pl.col("day") <= end))
    if test.is_empty():
        raise EvaluationError(f"no eligible coin on any decision day in {cfg.start}..{cfg.end}")
    tech = votes.filter(pl.col("agent") == TECHNICAL_AGENT).select(
        "symbol", "ts", p_technical="probability"
    )
    test = test.join(tech, on=["symbol", "ts"], how="left")
    primary = label_column(cfg.primary_threshold)
    per_target = {
        f"gain_{label_column(t)[4:]}": _metrics(
            test, f"score_{label_column(t)}", label_column(t), cfg.top_k
        )
        for t in cfg.thresholds
    }
    per_agent = {
        f"gain_{label_column(t)[4:]}": {
            "technical": _metrics(test, "p_technical", label_column(t), cfg.top_k),
            "momentum_90d": _metrics(test, "ret_90d", label_column(t), cfg.top_k),
        }
        for t in cfg.thresholds
    }
    portfolio, equity = _portfolio(history, test, f"score_{primary}", cfg)
    regimes = (
        regime_timeline(by_symbol, start * DAY_MS, end * DAY_MS)
        if regime_timeline is not None
        else None
    )
    scored = test.filter(pl.col(f"score_{primary}").is_not_null() & pl.col(primary).is_not_null())
    summary = {
        "config": cfg.model_dump(mode="json"),
        "data": {
            "coins": history["symbol"].n_unique(),
            "excluded_stablecoins_and_wrapped": len(excluded_symbols),
            "decision_days": len(days),
            "test_decision_days": test["day"].n_unique(),
            "test_rows": test.height,
            "test_rows_with_label": scored.height,
            "last_data_day": str(date.fromordinal(date(1970, 1, 1).toordinal() + data_last_day)),
            "survivorship_bias": SURVIVORSHIP_NOTE,
        },
        "precision_at_k": {k: v["precision_at_k"] for k, v in per_target.items()},
        "lift": {k: v["lift"] for k, v in per_target.items()},
        "base_rate": {k: v["base_rate"] for k, v in per_target.items()},
        "auc": {k: v["auc"] for k, v in per_target.items()},
        "brier": {k: v["brier"] for k, v in per_target.items()},
        "ece": {k: v["ece"] for k, v in per_target.items()},
        "targets": per_target,
        "single_signals": per_agent,
        "ensemble": {
            f"gain_{label_column(t)[4:]}": {
                "model": f.ensemble.to_dict(),
                "fit_rows": f.fit_rows,
                "ml_out_of_sample_rows": f.ml_oos_rows,
                "ensemble_out_of_sample_rows": f.ensemble_oos_rows,
            }
            for t, f in fitted.items()
        },
        "portfolio": {k: v for k, v in portfolio.items() if k in ("top_k", "gated_top_k")},
        "baselines": {
            k: v
            for k, v in portfolio.items()
            if k in ("btc_buy_hold", "equal_weight", "momentum_90d")
        },
        "regime_timeline": "included in the HTML report"
        if regimes is not None
        else "missing: no regime agent wired",
    }
    p = scored[f"score_{primary}"].to_numpy()
    y = scored[primary].cast(pl.Float64).to_numpy()
    return EvaluationResult(
        summary=_clean(summary),
        fitted=fitted,
        equity=equity,
        calibration=calibration_curve(p, y),
        deciles=hit_rate_by_decile(test, f"score_{primary}", primary),
        regimes=regimes,
        samples=test,
    )


# ------------------------------------------------------------------------------ backtest
@dataclass(frozen=True)
class BacktestDay:
    asof: date
    buys: tuple[str, ...]  # symbols the scan decided to BUY that day
    ranked: tuple[RankedSignal, ...]
    # the market regime that day and the share of the normal position size it allows (the
    # scan's own regime exposure: new positions are sized by it, as the deployed scan sizes them)
    regime: str | None = None
    exposure: float = 1.0


@dataclass
class BacktestResult:
    days: list[BacktestDay]
    stats: dict[str, dict[str, float]]  # "scan" and "btc_buy_hold"
    equity: pl.DataFrame  # day, strategy, equity
    # every position opened: (day, symbol, notional as a fraction of the starting equity)
    entries: list[tuple[date, str, float]] = field(default_factory=list)


def backtest(
    analyzer: ScanAnalyzer,
    start: date,
    end: date,
    *,
    every_days: int = 7,
    top_n: int | None = None,
    cost_rate: float = BACKTEST_COST_RATE,
    progress: Progress = no_progress,
    exit_rule: ExitRule = DEFAULT_EXIT_RULE,
) -> BacktestResult:
    """Replay the scan itself (:class:`ScanAnalyzer`, the object the scan Lambda and `cst scan`
    use) on every ``every_days``-th day of ``[start, end]``. Each BUY opens a position at the
    paper sizing (``max_asset_fraction`` of the equity that day, times the day's regime
    exposure, as the scan sizes its orders) at the day's close, unless the coin is already held; the position then follows the strategy's exit rule (the same rule as
    the training label and the evaluation's book: take profit, stop, time limit; a series cut at
    a break is valued at its last close less the haircut). Positions still open on ``end`` are
    marked at its close. ``cost_rate`` is paid on every entry and exit notional."""
    if end < start or every_days < 1:
        raise EvaluationError(f"need start <= end and every_days >= 1, got {start}..{end}")
    first, last = _day(start), _day(end)
    decision = list(range(first, last + 1, every_days))
    fraction = analyzer.settings.max_asset_fraction
    out: list[BacktestDay] = []
    for done, day in enumerate(decision):  # one scan per decision day
        progress(BACKTEST_STEP, done, len(decision))
        asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
        analysis = analyzer.analyze(asof, top_n)
        buys = tuple(s.symbol for s in analysis.ranked if s.action is Action.BUY)
        if len(buys) * fraction > 1:
            raise EvaluationError(f"{len(buys)} buys at {fraction:.0%} each exceed the equity")
        out.append(
            BacktestDay(
                asof.date(),
                buys,
                tuple(analysis.ranked),
                analysis.regime,
                float(analysis.exposure),
            )
        )
    progress(BACKTEST_STEP, len(decision), len(decision))
    span = last - first + 1
    frame = cut_series(
        analyzer.market.daily_universe(
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=last), span
        )
    ).frame
    symbols = sorted({s for d in out for s in d.buys} | {BTC})
    col = {s: i for i, s in enumerate(symbols)}
    px = frame.filter(pl.col("symbol").is_in(symbols) & (pl.col("close") > 0))
    h = exit_rule.max_days
    prices = np.full((span + h + 1, len(symbols)), np.nan)
    segs = np.full((span + h + 1, len(symbols)), -1, dtype=np.int64)
    r_idx = px["day"].to_numpy() - first
    c_idx = px["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy()
    prices[r_idx, c_idx] = px["close"].to_numpy()
    segs[r_idx, c_idx] = px["segment"].to_numpy()
    trades = [
        (d - first, col[sym]) for d, day in zip(decision, out, strict=True) for sym in day.buys
    ]
    sizes = [day.exposure for day in out for _ in day.buys]
    positions = _exit_rule_positions(prices, segs, trades, exit_rule, span)
    equity = np.full(span, 1.0)
    taken: list[tuple[int, float, FloatArray]] = []
    entries: list[tuple[date, str, float]] = []
    held_until: dict[int, int] = {}
    for k, (row, c) in enumerate(trades):  # one step per BUY: sizing needs the equity so far
        if held_until.get(c, -1) > row or not np.isfinite(prices[row, c]):
            continue
        value_now = _book_equity(taken, row)
        notional = fraction * sizes[k] * value_now
        path, exit_at = positions[k]
        taken.append((row, notional, path))
        entries.append((start + timedelta(days=row), symbols[c], notional))
        held_until[c] = row + exit_at if exit_at >= 0 else span
    for t in range(span):  # the curve: one vectorized sum per day over the held positions
        equity[t] = _book_equity(taken, t, cost_rate)
    btc = np.zeros((1, len(symbols)))
    btc[0, col[BTC]] = 1.0 if np.isfinite(prices[0, col[BTC]]) else 0.0
    sim = simulate_portfolio(prices[:span], np.asarray([0], dtype=np.int64), btc, cost_rate)
    stats: dict[str, dict[str, float]] = {}
    curves = []
    for name, curve, turnover in (
        ("scan", equity, float(sum(n for _, n, _ in taken) * 2)),
        ("btc_buy_hold", sim.equity, sim.turnover),
    ):
        st = portfolio_stats(curve, turnover, 0.0)
        stats[name] = {
            "total_return": st.total_return,
            "max_drawdown": st.max_drawdown,
            "sharpe": st.sharpe,
            "turnover": st.turnover,
            "positions": float(len(taken)) if name == "scan" else 1.0,
        }
        curves.append(
            pl.DataFrame({"day": np.arange(first, last + 1), "strategy": name, "equity": curve})
        )
    return BacktestResult(out, stats, pl.concat(curves), entries)


FloatArray = npt.NDArray[np.float64]


def _exit_rule_positions(
    prices: FloatArray,
    segs: npt.NDArray[np.int64],
    trades: list[tuple[int, int]],
    rule: ExitRule,
    span: int,
) -> list[tuple[FloatArray, int]]:
    """Per trade (entry row, column): its marked path relative to entry over the backtest rows
    from entry on (exit value after the exit) and its exit offset (-1 while still open)."""
    h = rule.max_days
    if not trades:
        return []
    rows = np.asarray([t[0] for t in trades], dtype=np.int64)
    cols = np.asarray([t[1] for t in trades], dtype=np.int64)
    fwd_rows = rows[:, None] + np.arange(1, h + 1)[None, :]
    visible = fwd_rows < span  # nothing after the backtest's end is read
    forward = np.where(visible, prices[fwd_rows, cols[:, None]], np.nan)
    seg_now = segs[rows, cols]
    seg_fwd = segs[fwd_rows, cols[:, None]]
    other = visible & (seg_fwd >= 0) & (seg_fwd != seg_now[:, None])
    first_cut = np.where(other.any(axis=1), np.argmax(other, axis=1), h + 1)
    entry = prices[rows, cols]
    ok = np.isfinite(entry) & (entry > 0)
    entry = np.where(ok, entry, 1.0)
    outcome = exit_outcomes(
        rule, entry, forward, series_end=first_cut.astype(np.int64), cut=first_cut <= h
    )
    # a window running past the backtest's end without an exit is still open
    still_open = (rows + h >= span) & (outcome.reason == 3)  # TIME
    offsets = np.where(still_open, -1, outcome.exit_offset)
    paths = marked_paths(entry, forward, ExitOutcomes(outcome.reason, offsets, outcome.ret))
    out: list[tuple[FloatArray, int]] = []
    for i in range(len(trades)):  # per BUY: its path laid on the backtest rows
        lay = np.full(span - rows[i], paths[i, -1])
        n = min(h + 1, span - rows[i])
        lay[:n] = paths[i, :n]
        out.append((lay if ok[i] else np.ones(span - rows[i]), int(offsets[i])))
    return out


def _book_equity(taken: list[tuple[int, float, FloatArray]], t: int, cost: float = 0.0) -> float:
    """Equity on row ``t``: 1 minus the entries made by then plus what those positions are
    worth (exit proceeds once closed), costs on entry and exit notional."""
    value = 1.0
    for row, notional, path in taken:
        if row <= t:
            value += notional * (path[t - row] * (1 - cost) ** 2 - 1.0)
    return value
