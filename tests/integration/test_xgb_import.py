"""The trainer imports xgboost without scikit-learn, and trains the same model as with it.

Structural (which modules a fresh interpreter has loaded), never timed: the CPU it saves is in
``bench/bench_cli_startup.py``'s neighbourhood, not asserted here.
"""

from __future__ import annotations

from tests.support.fresh_interpreter import run_fresh

WATCHED = ("xgboost", "sklearn", "scipy.stats", "pandas")

TRAIN = (
    "import hashlib\n"
    "import numpy as np\n"
    "from cryptosmarttrader.adapters.xgb_predictor import XgbRankTrainer, XgbTrainer\n"
    "rng = np.random.default_rng(3)\n"
    "x = rng.random((400, 4)); x[rng.random((400, 4)) < 0.05] = np.nan\n"
    "names = ('a', 'b', 'c', 'd')\n"
    "clf = XgbTrainer(rounds=20).fit(x, (x[:, 0] > 0.5).astype(float), names)\n"
    "groups = np.repeat(np.arange(20), 20)\n"
    "grades = np.floor(np.nan_to_num(x[:, 1]) * 5)\n"
    "rank = XgbRankTrainer(rounds=20).fit(x, grades, groups, names)\n"
    "answer = [hashlib.sha256(m.to_bytes()).hexdigest() for m in (clf, rank)]\n"
    "answer += [clf.predict_proba(x).round(12).tolist(), rank.score(x).round(12).tolist()]\n"
)


def test_training_and_scoring_do_not_import_scikit_learn() -> None:
    run = run_fresh(TRAIN, WATCHED)
    assert run.loaded == ["xgboost"]


def test_scikit_learn_still_imports_afterwards_in_the_same_process() -> None:
    run = run_fresh(TRAIN + "import sklearn.base\nanswer = sklearn.base.__name__\n", WATCHED)
    assert run.answer == "sklearn.base"


def test_the_models_are_the_same_as_with_scikit_learn_loaded() -> None:
    # Given one process where scikit-learn was imported first (xgboost then uses it, as before)
    with_sklearn = run_fresh("import sklearn\nimport xgboost\n" + TRAIN, WATCHED)
    assert "sklearn" in with_sklearn.loaded
    # When the same rows are trained and scored without it
    without = run_fresh(TRAIN, WATCHED)
    # Then the boosters' bytes and every score are identical
    assert without.answer == with_sklearn.answer
