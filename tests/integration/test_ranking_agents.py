"""The promoted ranking model as two of the nine agents, on real recorded data.

The ML predictor (``ml``) is the ranking model itself: its vote on a coin is the within-day rank
percentile of the model's score, never presented as a calibrated probability. The ensemble
(``ensemble``) is the calibration that turns that percentile into the P(event) the scan ranks
and gates on. The scan's ranking and decisions are those of the calibrated probability alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from cryptosmarttrader.adapters.ranking_bundle import load_ranking_bundle, save_ranking_bundle
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.rank_features import AGENT_SIGNALS
from cryptosmarttrader.ports import RankerUnavailableError
from cryptosmarttrader.services.scan import RANKING_LOOKBACK_DAYS, ScanAnalyzer
from cryptosmarttrader.services.scoring import (
    RankingModel,
    ranking_rows,
    ranking_scan_votes,
    ranking_scan_votes_with_agents,
)
from cryptosmarttrader.settings import TradingSettings
from tests.support.skill import Tampered, evaluation

pytestmark = pytest.mark.realdata

NO_CALIBRATION = "the ranking model has no calibration: no probability"


@pytest.fixture(scope="module")
def served(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RankingModel, Tampered, pl.DataFrame, int]:
    """The evaluation's saved model as the scan loads it, and the last day it scored."""
    market = Tampered(data_dir, None)
    result = evaluation(data_dir)  # on that market, 30 boosting rounds
    folder = tmp_path_factory.mktemp("model")
    save_ranking_bundle(folder, result)
    day = result.rows.filter(pl.col("prob").is_not_null())["day"].max()
    assert isinstance(day, int)
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    window = market.daily_universe(asof, RANKING_LOOKBACK_DAYS)
    return load_ranking_bundle(folder), market, window, day * DAY_MS


def _model_scores(model: RankingModel, window: pl.DataFrame, asof_ms: int) -> dict[str, float]:
    rows, _ = ranking_rows(
        window, asof_ms, members=None, top_n=model.top_n,
        gate_days=model.gate_days, min_volume_usd=model.min_volume_usd,
    )  # fmt: skip
    x = (
        rows.select(pl.col(f"{s}_pct").cast(pl.Float64).fill_null(np.nan) for s in model.signals)
        .to_numpy()
        .astype(np.float64)
    )
    return dict(zip(rows["symbol"].to_list(), model.ranker.score(x).tolist(), strict=True))


def _of(votes: pl.DataFrame, agent: str) -> pl.DataFrame:
    return votes.filter(pl.col("agent") == agent)


def test_the_ml_vote_is_the_models_percentile_and_the_ensemble_vote_its_calibration(
    served: tuple[RankingModel, Tampered, pl.DataFrame, int],
) -> None:
    model, _, window, asof_ms = served
    assert model.calibrator is not None
    # When the scan's ranking path scores the day
    scores, agents, _ = ranking_scan_votes_with_agents(model, window, asof_ms)
    ml, ensemble = _of(agents, "ml"), _of(agents, "ensemble")
    # Then both agents vote on every coin the model ranked, in the model's order
    assert set(agents["agent"].unique().to_list()) == {"ml", "ensemble"}
    assert ml.height == ensemble.height == scores.height > 5
    assert ml["abstain_reason"].null_count() == ensemble["abstain_reason"].null_count() == ml.height
    assert ml["symbol"].to_list() == ensemble["symbol"].to_list() == scores["symbol"].to_list()
    # And the ML predictor's vote is the within-day rank percentile of the model's own score
    raw = _model_scores(model, window, asof_ms)
    order = sorted(raw, key=lambda s: -raw[s])
    assert ml["symbol"].to_list() == order
    pct = ml["probability"].to_numpy()
    values = list(raw.values())
    average_rank = [  # ties share their average rank
        sum(v < raw[s] for v in values) + (sum(v == raw[s] for v in values) + 1) / 2 for s in order
    ]
    assert np.allclose(pct, np.array(average_rank) / len(raw))
    assert np.allclose(ml["confidence"].to_numpy(), np.maximum(pct, 1 - pct))
    for symbol, reasons in zip(order, ml["reasons"].to_list(), strict=True):
        assert reasons[0] == (f"ranking model {model.version} (in process) score {raw[symbol]:.4f}")
        assert "not a calibrated probability" in reasons[1]
    # And the ensemble's vote is the calibration of that percentile: the probability the scan
    # ranks and gates on, with the agents whose probabilities the model reads named
    calibrated: npt.NDArray[np.float64] = model.calibrator.apply(pct)
    assert np.allclose(ensemble["probability"].to_numpy(), calibrated)
    assert ensemble["probability"].to_list() == ensemble["confidence"].to_list()
    assert ensemble["probability"].to_list() == scores["probability"].to_list()
    assert scores["agent"].unique().to_list() == ["ensemble"]
    read = [s.removeprefix("p_") for s in AGENT_SIGNALS if s in model.signals]
    for row, why in zip(ensemble["reasons"].to_list(), scores["reasons"].to_list(), strict=True):
        assert row[:2] == why  # the ranked row's own reasons, unchanged
        assert row[2].startswith("calibration of the ml agent's rank percentile")
        assert all(f"{agent}" in row[2] for agent in read)
        if not read:
            assert "no agent's probability is among its inputs" in row[2]
    # and ranking_scan_votes gives exactly the votes ranked on
    ranked, _ = ranking_scan_votes(model, window, asof_ms)
    assert ranked.equals(scores)


def test_the_scan_tallies_both_agents_and_ranks_on_the_calibrated_probability(
    served: tuple[RankingModel, Tampered, pl.DataFrame, int],
) -> None:
    model, market, window, asof_ms = served
    scores, _, _ = ranking_scan_votes_with_agents(model, window, asof_ms)
    analyzer = ScanAnalyzer(
        market=market,  # type: ignore[arg-type]
        clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        settings=TradingSettings(universe="all"),
        model=model,
    )
    # When the scan decides on the day
    analysis = analyzer.decide(window, asof_ms, top_n=10)
    # Then the ML predictor and the ensemble each voted on every coin scored, and no other
    # agent name stands for the model
    tally = analysis.agent_tally
    assert set(tally) == {
        "technical", "early_mover", "funding", "arbitrage", "sentiment", "liquidity", "regime",
        "ml", "ensemble",
    }  # fmt: skip
    assert tally["ml"].votes == tally["ensemble"].votes == scores.height
    assert tally["ml"].abstentions == tally["ensemble"].abstentions == 0
    # And the ranked rows are the model's order with the calibrated probability as the score
    assert [s.symbol for s in analysis.ranked] == scores["symbol"].to_list()[:10]
    assert [s.score for s in analysis.ranked] == scores["probability"].to_list()[:10]
    assert [list(s.reasons[:2]) for s in analysis.ranked] == scores["reasons"].to_list()[:10]
    # and each ranked row carries both agents' votes
    for signal in analysis.ranked:
        votes = {v.agent: v for v in analysis.agent_votes[signal.symbol]}
        assert votes["ensemble"].probability == signal.score
        assert votes["ml"].probability is not None
        assert votes["ml"].reasons[0].startswith(f"ranking model {model.version}")
    assert set(analysis.agent_stats) == {"ensemble"}


def test_without_a_calibration_both_agents_abstain_with_the_reason(
    served: tuple[RankingModel, Tampered, pl.DataFrame, int],
) -> None:
    model, _, window, asof_ms = served
    scores, agents, _ = ranking_scan_votes_with_agents(
        replace(model, calibrator=None), window, asof_ms
    )
    assert scores.height > 5 and scores["probability"].null_count() == scores.height
    assert set(scores["abstain_reason"].to_list()) == {NO_CALIBRATION}
    for agent in ("ml", "ensemble"):
        rows = _of(agents, agent)
        assert rows.height == scores.height
        assert set(rows["abstain_reason"].to_list()) == {NO_CALIBRATION}


class _Unavailable:
    """A served ranker that cannot answer (an endpoint down)."""

    feature_names: tuple[str, ...] = ()

    def score(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        raise RankerUnavailableError("ranking endpoint cst-rank failed: throttled")

    def to_bytes(self) -> bytes:
        return b""


def test_a_ranker_that_cannot_answer_makes_both_agents_abstain_with_its_reason(
    served: tuple[RankingModel, Tampered, pl.DataFrame, int],
) -> None:
    model, _, window, asof_ms = served
    scores, agents, quality = ranking_scan_votes_with_agents(
        replace(model, ranker=_Unavailable()), window, asof_ms
    )
    why = "ranking endpoint cst-rank failed: throttled"
    assert scores.height > 5 and set(scores["abstain_reason"].to_list()) == {why}
    assert _of(agents, "ml")["abstain_reason"].to_list() == [why] * scores.height
    assert _of(agents, "ensemble")["abstain_reason"].to_list() == [why] * scores.height
    assert quality.clean.height > 0


def test_an_unhealthy_source_makes_every_agent_abstain_in_the_ranking_scan(
    served: tuple[RankingModel, Tampered, pl.DataFrame, int],
) -> None:
    model, market, window, asof_ms = served
    analyzer = ScanAnalyzer(
        market=market,  # type: ignore[arg-type]
        clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
        settings=TradingSettings(universe="all"),
        model=model,
        data_health=lambda: "ingest circuit breaker open",
    )
    analysis = analyzer.decide(window, asof_ms, top_n=10)
    why = "data source unhealthy: ingest circuit breaker open"
    assert analysis.agent_tally and all(t.votes == 0 for t in analysis.agent_tally.values())
    for name in ("ml", "ensemble", "technical", "regime"):
        assert set(analysis.agent_tally[name].abstention_reasons) == {why}, name
