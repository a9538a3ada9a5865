"""What the evaluation's JSON says each agent saw follows what the run decided."""

from __future__ import annotations

from datetime import date

from cryptosmarttrader.services.skill_evaluation import EVALUATION_AGENTS, evaluation_agents

SELECTION = {
    "p_technical": {"auc_in_sample": 0.56, "auc_out_of_sample": 0.4812, "dates": 40.0},
    "p_early_mover": {"auc_in_sample": None, "auc_out_of_sample": None, "dates": 0.0},
}


def test_every_agent_keeps_the_statement_when_the_run_used_it_as_stated() -> None:
    out = evaluation_agents(
        ("dd_365d", "p_technical", "p_early_mover"),
        SELECTION,
        train_end=date(2021, 6, 30),
        regime_applied=True,
        model_kept=True,
    )
    assert set(out) == set(EVALUATION_AGENTS)
    for name in ("technical", "early_mover", "liquidity", "regime", "ml", "ensemble"):
        assert out[name] == EVALUATION_AGENTS[name], name
    assert "2021-06-30" in out["funding"]["saw"]


def test_an_agent_the_signal_selection_left_out_is_not_called_a_ranking_input() -> None:
    out = evaluation_agents(
        ("dd_365d",),
        SELECTION,
        train_end=date(2018, 12, 31),
        regime_applied=True,
        model_kept=True,
    )
    assert out["technical"]["used"] == "not used"
    assert "AUC before train-end was 0.4812 (kept only above 0.5)" in out["technical"]["saw"]
    assert out["early_mover"]["used"] == "not used"
    assert "could not be measured before train-end" in out["early_mover"]["saw"]
    assert "this run's train-end (2018-12-31)" in out["funding"]["saw"]


def test_a_run_without_regimes_or_without_a_kept_model_says_so() -> None:
    out = evaluation_agents(
        (), SELECTION, train_end=date(2022, 12, 31), regime_applied=False, model_kept=False
    )
    assert out["regime"]["used"] == "not used"
    assert "full size" in out["regime"]["saw"]
    assert out["ml"]["used"] == "the model itself, left out"
    assert "stays in cash" in out["ml"]["saw"]
    assert "never trades" in out["technical"]["saw"]
    # funding after the train-end's limit: only the reason that still holds
    assert out["funding"]["saw"].endswith("one coin cannot rank a universe")
