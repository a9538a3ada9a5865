"""`cst evaluate` on the real data: the JSON contract, the point-in-time universe, and no
look-ahead (rows after a decision day never change that day's scores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from cryptosmarttrader.adapters.ranking_bundle import load_ranking_bundle, save_ranking_bundle
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.cli.evaluate import app as evaluate_app
from cryptosmarttrader.cli.model import app as model_app
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.services.scan import RANKING_LOOKBACK_DAYS
from cryptosmarttrader.services.scoring import ranking_scan_votes
from cryptosmarttrader.services.skill_evaluation import SkillResult
from tests.support.skill import TAMPER_AFTER, Tampered, evaluation

pytestmark = pytest.mark.realdata

INTERVAL = {"value", "ci_low", "ci_high", "n_dates"}


def _cli(*args: str) -> typer.Typer:
    root = typer.Typer()
    root.add_typer(evaluate_app, name="evaluate")
    return root


def test_cli_json_has_the_contract(data_dir: Path, tmp_path: Path) -> None:
    # Given `cst evaluate` on the real data and the point-in-time universe, a short window
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        _cli(),
        [
            "evaluate", "--data", str(data_dir), "--train-end", "2020-03-31",
            "--start", "2020-04-08", "--end", "2020-06-30", "--step-days", "14",
            "--first-decision", "2018-06-01", "--json", "--report", str(report),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # Then per target: precision@k, per-date AUC and rank IC as {value, ci_low, ci_high}
    for target in ("trade", "opportunity"):
        t = out["targets"][target]
        for key in ("precision_at_k", "auc_per_date", "rank_ic"):
            assert set(t[key]) >= INTERVAL
        assert set(t["trivial_rankers"]) == {
            "random", "smallest_market_cap", "highest_volatility_30d", "momentum_90d",
            "largest_drawdown_365d",
        }  # fmt: skip
        for ranker in t["trivial_rankers"].values():
            assert {"precision_at_k", "auc_per_date", "rank_ic"} == set(ranker)
            assert set(ranker["precision_at_k"]) >= INTERVAL
        assert "trivial ranker" in t["verdict"]
    # the universe says where membership came from and how many members had no prices
    u = out["universe"]
    assert u["source"] == "point_in_time"
    assert u["members_without_prices"] > 0
    assert u["file"].endswith("top200_point_in_time.csv")
    assert out["bounds"]["base_rate_lower"] <= out["bounds"]["base_rate_upper"]
    # the decision to trade or not is explicit, with a reason
    assert isinstance(out["decision"]["trade"], bool) and out["decision"]["reason"]
    assert {"top_k_model", "equal_weight_upper", "equal_weight_lower", "btc_buy_hold"} <= set(
        out["portfolio"]
    )
    # the market regime of each rebalance day sized the model's cohorts (the scan's exposure)
    regime = out["regime"]
    assert regime["applied"] is True
    assert sum(regime["rebalance_days_by_regime"].values()) >= 1
    assert 0.25 <= regime["mean_exposure"] <= 1.0
    if out["decision"]["trade"]:
        assert "top_k_model_full_size" in out["portfolio"]
    # and each of the nine agents says what it saw and how it entered
    assert set(out["agents"]) == {
        "technical", "early_mover", "liquidity", "regime", "ml", "ensemble", "funding",
        "arbitrage", "sentiment",
    }  # fmt: skip
    assert all(a["used"] and a["saw"] for a in out["agents"].values())
    assert "<html" in report.read_text(encoding="utf-8").lower()


def test_the_agents_block_says_what_the_documented_development_run_used(data_dir: Path) -> None:
    # Given the documented development run (`--train-end 2018-12-31 --start 2019-01-08`; a
    # shorter reporting window: the signal selection reads only data before the train-end)
    result = CliRunner().invoke(
        _cli(),
        [
            "evaluate", "--data", str(data_dir), "--train-end", "2018-12-31",
            "--start", "2019-01-08", "--end", "2019-03-01", "--step-days", "14", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    kept = out["model"]["signals_kept"]
    agents = out["agents"]
    # Then an agent is called a ranking input exactly when the run kept its probability: there
    # the early mover's could not be measured before the train-end (too few matured dates)
    for agent in ("technical", "early_mover"):
        is_input = agents[agent]["used"] == "ranking input"
        assert is_input == (f"p_{agent}" in kept), (agent, kept, agents[agent])
    assert "p_early_mover" not in kept
    assert (
        "left out of this run's ranking by the signal selection" in (agents["early_mover"]["saw"])
    )
    # And the funding statement names this run's train-end, not another one
    assert "2018-12-31" in agents["funding"]["saw"]
    assert "2021-06-30" not in agents["funding"]["saw"]


def test_cli_refuses_a_start_inside_the_training_period(data_dir: Path) -> None:
    result = CliRunner().invoke(
        _cli(),
        ["evaluate", "--data", str(data_dir), "--train-end", "2020-01-01",
         "--start", "2019-06-01", "--end", "2019-12-31"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "embargo" in result.output


@pytest.fixture(scope="module")
def runs(data_dir: Path) -> tuple[SkillResult, SkillResult]:
    # the same evaluation (30 boosting rounds), the second on data rewritten after TAMPER_AFTER
    return evaluation(data_dir), evaluation(data_dir, TAMPER_AFTER)


def test_rows_after_a_decision_day_never_change_its_scores(
    runs: tuple[SkillResult, SkillResult],
) -> None:
    # Given the same evaluation twice, the second with every row after D rewritten
    honest, altered = runs
    d_day = int(datetime.combine(TAMPER_AFTER, datetime.min.time(), UTC).timestamp()) // 86_400

    def upto(rows: pl.DataFrame) -> pl.DataFrame:
        return rows.filter(pl.col("day") <= d_day).select("day", "symbol", "score", "prob")

    a, b = upto(honest.rows), upto(altered.rows)
    # Then every score and probability on or before D is identical, and so is what was kept
    assert a.height > 100 and a["score"].null_count() < a.height
    assert a.equals(b)
    assert honest.signals == altered.signals
    # while the outcomes after D did change (the future really was different)
    later = honest.rows.filter(pl.col("day") > d_day).select("day", "symbol", "trade_ret")
    changed = altered.rows.filter(pl.col("day") > d_day).select("day", "symbol", "trade_ret")
    assert not later.equals(changed)


def test_the_scan_serves_the_evaluated_probability(
    runs: tuple[SkillResult, SkillResult], data_dir: Path, tmp_path: Path
) -> None:
    # Given the evaluation's saved model (last refit, its calibration, its evaluation)
    honest, _ = runs
    save_ranking_bundle(tmp_path / "model", honest)
    model = load_ranking_bundle(tmp_path / "model")
    last = honest.rows.filter(pl.col("prob").is_not_null())["day"].max()
    assert isinstance(last, int)
    # When the scan's own path scores that day from a plain window of the same data
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=last)
    window = Tampered(data_dir, None).daily_universe(asof, RANKING_LOOKBACK_DAYS)
    votes, _ = ranking_scan_votes(model, window, last * DAY_MS)
    # Then it rates the same coins with the same calibrated probability the evaluation reported
    evaluated = honest.rows.filter(pl.col("day") == last).select("symbol", "prob").sort("symbol")
    served = votes.select("symbol", "probability").sort("symbol")
    assert served["symbol"].to_list() == evaluated["symbol"].to_list()
    assert np.allclose(served["probability"].to_numpy(), evaluated["prob"].to_numpy(), atol=1e-6)
    # and the served model says whether it may trade, with the evaluation's reason
    assert model.trade is honest.summary["decision"]["trade"]
    assert model.decision_reason == honest.summary["decision"]["reason"]


def test_the_registry_keeps_the_evaluation_and_refuses_a_model_without_skill(
    runs: tuple[SkillResult, SkillResult], tmp_path: Path
) -> None:
    # Given the evaluated model saved with its evaluation (too short a window to show skill)
    honest, _ = runs
    save_ranking_bundle(tmp_path / "model", honest)
    root = typer.Typer()
    root.add_typer(model_app, name="model")
    state = str(tmp_path / "state")
    # When it is registered
    reg = CliRunner().invoke(
        root, ["model", "register-ranking", str(tmp_path / "model"), "--state-dir", state, "--json"]
    )
    assert reg.exit_code == 0, reg.output
    row = json.loads(reg.stdout)
    assert row["promotable"] is False and row["skill_gate"]
    listed = CliRunner().invoke(
        root, ["model", "list", "--state-dir", state, "--group", "cst-rank", "--json"]
    )
    assert json.loads(listed.stdout)[0]["stage"] == "registered"
    # Then promotion is refused with the gate's reason, and nothing is served
    promoted = CliRunner().invoke(
        root,
        ["model", "promote", "1", "--reason", "try", "--state-dir", state, "--group", "cst-rank"],
    )
    assert promoted.exit_code != 0
    assert "fails the skill gate" in promoted.output
    pulled = CliRunner().invoke(
        root, ["model", "pull-production", str(tmp_path / "served"), "--state-dir", state]
    )
    assert pulled.exit_code != 0 and "no production version" in pulled.output


def test_a_broken_row_anywhere_in_the_feature_window_rejects_the_coin(data_dir: Path) -> None:
    from datetime import UTC, datetime

    import polars as pl

    from cryptosmarttrader.services.scoring import ranking_rows

    day_ms = 86_400_000
    asof = datetime(2022, 6, 1, tzinfo=UTC)
    asof_ms = int(asof.timestamp() * 1000)
    window = RecordedMarketData(data_dir).daily_universe(asof, 370)
    # Given chainlink's close infinite 300 days back: outside the gate's 260 days, inside the
    # 365 days its features read
    bad_ts = asof_ms - 300 * day_ms
    damaged = window.with_columns(
        close=pl.when((pl.col("symbol") == "chainlink") & (pl.col("ts") == bad_ts))
        .then(float("inf"))
        .otherwise(pl.col("close"))
    )
    kwargs = {"members": None, "top_n": 200, "gate_days": 260, "min_volume_usd": 1e6}
    clean_rows, _ = ranking_rows(window, asof_ms, **kwargs)  # type: ignore[arg-type]
    rows, quality = ranking_rows(damaged, asof_ms, **kwargs)  # type: ignore[arg-type]
    # Then the coin is ranked on clean data, and rejected with the gate's reason when damaged
    assert "chainlink" in clean_rows["symbol"].to_list()
    assert "chainlink" not in rows["symbol"].to_list()
    assert any("NON_FINITE" in r or "infinite" in r for r in quality.excluded["chainlink"])
    assert rows.height == clean_rows.height - 1
