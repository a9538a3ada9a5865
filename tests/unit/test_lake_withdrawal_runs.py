"""Which withdrawal runs the deployed scan's arbitrage agent trusts: a replay's mark makes it
vote saying the constraints are unknown; a live venue's unreadable run stays an abstention with
its reason; runs outside the window (or after the decision) count for nothing."""

from __future__ import annotations

from typing import Any

from cryptosmarttrader.adapters.lake_agent_data import LakeAgentData
from cryptosmarttrader.adapters.recorded_agent_data import RECORDED_WITHDRAWALS_UNKNOWN
from cryptosmarttrader.adapters.s3_agent_inputs import WithdrawalStatus

ASOF = 1_700_000_000_000
HOUR = 3_600_000


class _Runs:
    def __init__(self, runs: dict[str, WithdrawalStatus]) -> None:
        self.runs = runs

    def read_withdrawal_status(self, exchange: str) -> WithdrawalStatus | None:
        return self.runs.get(exchange)


def _data(runs: dict[str, WithdrawalStatus]) -> LakeAgentData:
    lake: Any = object()
    inputs: Any = _Runs(runs)
    return LakeAgentData(lake, inputs, home="binance", venues=("binance", "kucoin"))


def test_a_replay_run_makes_the_constraints_unknown_not_missing() -> None:
    runs = {"binance": WithdrawalStatus(ASOF - HOUR, RECORDED_WITHDRAWALS_UNKNOWN, True)}
    assert _data(runs)._withdrawal_runs(ASOF) == ({}, RECORDED_WITHDRAWALS_UNKNOWN)


def test_a_live_venue_that_could_not_be_read_stays_an_abstention_with_its_reason() -> None:
    runs = {
        "binance": WithdrawalStatus(ASOF - HOUR, "binance: no read-only keys configured"),
        "kucoin": WithdrawalStatus(ASOF - HOUR, None),
    }
    missing, unknown = _data(runs)._withdrawal_runs(ASOF)
    assert unknown is None
    assert missing == {"binance": "binance: no read-only keys configured"}


def test_runs_outside_the_window_or_after_the_decision_count_for_nothing() -> None:
    stale = WithdrawalStatus(ASOF - 3 * 24 * HOUR, RECORDED_WITHDRAWALS_UNKNOWN, True)
    future = WithdrawalStatus(ASOF + HOUR, "kucoin: currency data unavailable", False)
    assert _data({"binance": stale, "kucoin": future})._withdrawal_runs(ASOF) == ({}, None)
