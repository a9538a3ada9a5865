"""Technical agent and ranking on tiny hand-written series with known answers."""

import math

import polars as pl
import pytest

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.technical import indicator_frame, technical_votes
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.ranking import rank
from cryptosmarttrader.domain.types import Action

T0 = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS


def _series(symbol: str, closes: list[float], start: int = T0) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [start + i * DAY_MS for i in range(n)],
            "close": closes,
            "volume": [1000.0] * n,
            "market_cap": [1e9] * n,
        },
        schema=DAILY_SCHEMA,
    )


def test_rsi_is_wilder_rsi() -> None:
    # Given alternating +2 / -1 moves, ending on a -1 move
    closes = [100.0]
    for i in range(300):
        closes.append(closes[-1] + (2.0 if i % 2 == 0 else -1.0))
    rsi = indicator_frame(_series("x", closes))["rsi"].to_list()[-1]
    # Then Wilder's smoothing (alpha 1/14) reaches its 2-cycle fixed point: after a down move
    # avg_up = 26/27 and avg_down = 14/27, so RSI = 100 - 100 / (1 + 26/14) = 65.0
    assert rsi == pytest.approx(100 - 100 / (1 + 26 / 14), abs=1e-6)


def test_uptrend_votes_up_and_downtrend_votes_down() -> None:
    up = [100 * 1.01**i * (1.01 if i % 3 == 0 else 1) for i in range(220)]
    down = [100 * 0.99**i * (1.01 if i % 3 == 0 else 1) for i in range(220)]
    frame = pl.concat([_series("up", up), _series("down", down)])
    asof = T0 + 219 * DAY_MS
    votes = technical_votes(frame, asof).sort("symbol")
    by = {r["symbol"]: r for r in votes.iter_rows(named=True)}
    assert by["up"]["probability"] > 0.8
    assert by["down"]["probability"] < 0.25
    assert by["up"]["abstain_reason"] is None and by["up"]["reasons"]
    assert votes.schema == pl.Schema(VOTE_SCHEMA)


def test_abstains_with_reason_on_short_history_and_missing_bar() -> None:
    frame = pl.concat(
        [
            _series("short", [1.0 + i for i in range(30)], start=T0 + 190 * DAY_MS),
            _series("stale", [1.0 + i for i in range(150)]),  # ends 70 days before asof
        ]
    )
    votes = technical_votes(frame, T0 + 219 * DAY_MS)
    reasons = dict(votes.select("symbol", "abstain_reason").iter_rows())
    assert reasons["short"].startswith("insufficient history: 30 daily bars")
    assert reasons["stale"].startswith("no bar at the as-of date")
    assert votes["probability"].null_count() == 2


def test_gap_in_momentum_window_abstains_rather_than_guessing() -> None:
    closes = [1.0 + i * 0.01 for i in range(200)]
    frame = _series("gappy", closes).filter(pl.col("ts") != T0 + 150 * DAY_MS)
    votes = technical_votes(frame, T0 + 199 * DAY_MS)
    assert "gap" in votes["abstain_reason"][0]


def test_history_shorter_than_the_momentum_window_abstains_and_ranks_as_abstention() -> None:
    # Given a coin listed 75 days ago: enough bars to vote at all (60), too few for the 90-day
    # momentum (90 bars back do not exist)
    frame = _series("young", [1.0 + i * 0.01 for i in range(75)])
    asof = T0 + 74 * DAY_MS

    # When the agent votes and the whole universe is ranked
    votes = technical_votes(frame, asof)
    (ranked,) = rank(votes, confidence_gate=0.8, top_n=1000)

    # Then it abstains with the reason instead of a vote without a probability
    assert votes["abstain_reason"][0] == (
        "insufficient history for 90-day momentum: 75 daily bars < 91"
    )
    assert votes["probability"][0] is None and votes["confidence"][0] is None
    assert ranked.action is Action.ABSTAIN


def test_rows_after_asof_never_change_the_vote() -> None:
    closes = [100 * 1.01**i for i in range(200)]
    asof = T0 + 150 * DAY_MS
    full = _series("a", closes)
    truncated = full.filter(pl.col("ts") <= asof)
    tampered = full.with_columns(
        close=pl.when(pl.col("ts") > asof).then(1.0).otherwise(pl.col("close"))
    )
    base = technical_votes(truncated, asof)
    assert technical_votes(full, asof).equals(base)
    assert technical_votes(tampered, asof).equals(base)


def _votes(rows: list[tuple[str, float | None, float | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "agent": ["t"] * len(rows),
            "ts": [T0] * len(rows),
            "probability": [r[1] for r in rows],
            "confidence": [r[2] for r in rows],
            "reasons": [["r"] for _ in rows],
            "abstain_reason": [r[3] for r in rows],
        },
        schema=VOTE_SCHEMA,
    )


def test_rank_orders_by_score_and_gates_on_confidence() -> None:
    votes = _votes(
        [
            ("a", 0.70, 0.9, None),
            ("b", 0.90, 0.5, None),
            ("c", None, None, "insufficient history"),
            ("d", 0.40, 0.95, None),
        ]
    )
    out = rank(votes, confidence_gate=0.8, top_n=10)
    assert [s.symbol for s in out] == ["b", "a", "d", "c"]
    assert [s.action for s in out] == [Action.HOLD, Action.BUY, Action.HOLD, Action.ABSTAIN]
    assert "below gate 0.80" in out[0].reasons[-1]
    assert "not bullish" in out[2].reasons[-1]
    assert rank(votes, confidence_gate=0.8, top_n=2)[-1].symbol == "a"


@pytest.mark.parametrize(("gate", "top"), [(-0.1, 5), (1.1, 5), (0.8, 0)])
def test_rank_rejects_bad_parameters(gate: float, top: int) -> None:
    with pytest.raises(ValueError):
        rank(_votes([("a", 0.7, 0.9, None)]), confidence_gate=gate, top_n=top)


@pytest.mark.parametrize(
    ("probability", "confidence"),
    [(None, 0.9), (math.nan, 0.9), (math.inf, 0.9), (0.9, None), (0.9, math.nan), (0.9, -math.inf)],
)
def test_a_vote_without_a_finite_score_is_an_abstention_ranked_last(
    probability: float | None, confidence: float | None
) -> None:
    # Given a row that claims to vote (no abstain reason) but carries no usable score
    votes = _votes(
        [
            ("bad", probability, confidence, None),
            ("a", 0.70, 0.9, None),
            ("c", None, None, "insufficient history"),
            ("d", 0.40, 0.95, None),
        ]
    )
    # When ranked
    out = rank(votes, confidence_gate=0.8, top_n=10)
    # Then it is an abstention with the reason, after every real score, never through the gate
    assert [s.symbol for s in out][:2] == ["a", "d"]
    bad = next(s for s in out if s.symbol == "bad")
    assert bad.action is Action.ABSTAIN
    assert bad.score is None and bad.confidence is None
    assert "no finite score" in bad.reasons[0]
    assert all(
        s.score is None or math.isfinite(s.score) for s in out
    )  # nothing NaN reaches a report


def test_technical_agent_abstains_when_momentum_is_undefined() -> None:
    # Given 70 bars: enough for the agent's minimum history but not for a 90-day return
    frame = _series("young", [1.0 + 0.01 * i for i in range(70)])
    asof = int(frame["ts"].max())  # type: ignore[arg-type]
    votes = technical_votes(frame, asof)
    row = votes.row(0, named=True)
    # Then it abstains with a reason instead of voting without a probability
    assert row["probability"] is None
    assert row["abstain_reason"] is not None
