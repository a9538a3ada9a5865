"""The walk-forward skill evaluation the ranking tests share: real data on a slice of coins
(``Tampered``, optionally rewritten after a day), one configuration (``CFG``), and each
evaluation run once per test process (``evaluation``).

An evaluation is a pure function of the recorded data, the tampering, the boosting rounds and
``CFG``: every module that needs the same one (the skill evaluation's own tests, the scan that
serves its model, the registry states, the ranking endpoint and deployment) reads the same
result instead of fitting it again (with ``-n 2`` each worker runs it at most once). Nobody
mutates a ``SkillResult`` (its frames are immutable; each module saves its own bundle from it
into its own folder).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbRankTrainer
from cryptosmarttrader.services.skill_evaluation import SkillConfig, SkillResult, evaluate_skill

COINS = (
    "bitcoin", "ethereum", "ripple", "litecoin", "dogecoin", "stellar", "monero", "dash", "nem",
    "ethereum-classic", "zcash", "maidsafecoin", "siacoin", "decred", "waves", "augur",
    "digibyte", "verge", "bitshares", "lisk", "factom", "steem", "golem", "qtum", "omisego",
    "binancecoin", "cardano", "tron", "eos", "iota", "neo", "tezos", "vechain", "chainlink",
)  # fmt: skip


class Tampered:
    """The real data on a slice of coins; every row after ``after`` rewritten (prices scaled
    per coin, volumes halved) when ``after`` is set."""

    def __init__(self, data_dir: Path, after: date | None) -> None:
        self.inner = RecordedMarketData(data_dir)
        self.after = after

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        frame = self.inner.daily_universe(asof, lookback_days).filter(pl.col("symbol").is_in(COINS))
        if self.after is None:
            return frame
        cut = int(datetime.combine(self.after, datetime.min.time(), UTC).timestamp() * 1000)
        later = pl.col("ts") > cut
        factor = 1.0 + pl.col("symbol").hash(seed=3).mod(5).cast(pl.Float64)
        return frame.with_columns(
            close=pl.when(later).then(pl.col("close") * factor).otherwise("close"),
            volume=pl.when(later).then(pl.col("volume") * 0.5).otherwise("volume"),
        )

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        return self.inner.ohlcv(symbol, timeframe, start, end)


CFG = SkillConfig(
    train_end=date(2019, 12, 31), start=date(2020, 1, 8), end=date(2020, 4, 30),
    first_decision=date(2017, 1, 1), step_days=14, top_n=30, n_boot=200,
)  # fmt: skip
TAMPER_AFTER = date(2020, 3, 4)


@functools.cache
def evaluation(data_dir: Path, after: date | None = None, rounds: int = 30) -> SkillResult:
    """``evaluate_skill(Tampered(data_dir, after), XgbRankTrainer(rounds=rounds), CFG)``, run
    once per process for each argument set (read it, never change it)."""
    return evaluate_skill(Tampered(data_dir, after), XgbRankTrainer(rounds=rounds), CFG)
