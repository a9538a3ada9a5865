"""Risk level persistence in the state table: transitions logged, level survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.local_aws import LocalAws, embedded_aws
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.risk import RiskLevel, RiskObservation
from cryptosmarttrader.services.risk_state import RISK_PK, RiskStateService
from cryptosmarttrader.settings import AwsResources

T0 = datetime(2022, 5, 9, 8, 0, tzinfo=UTC)


def _service(aws: LocalAws, clock: FixedClock) -> RiskStateService:
    res = aws.resources
    switch = SsmKillSwitch(res.kill_switch_param, aws.ssm, clock)
    return RiskStateService(DynamoStateStore(res.state_table, aws.dynamodb), switch, clock)


def test_level_and_transitions_survive_a_restart_and_shutdown_needs_a_human(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clock = FixedClock(T0)
    # Given a first process that sees equity fall 20 % from its peak
    with embedded_aws(tmp_path, AwsResources()) as aws:
        svc = _service(aws, clock)
        svc.observe(RiskObservation(Decimal("100000")))
        clock.advance(timedelta(hours=1))
        state, move = svc.observe(RiskObservation(Decimal("80000")))
        assert state.level is RiskLevel.SHUTDOWN and move is not None
    # When a second process starts days later with healthy metrics
    clock.advance(timedelta(days=3))
    with embedded_aws(tmp_path, AwsResources()) as aws:
        svc = _service(aws, clock)
        restarted = svc.load()
        still, none = svc.observe(RiskObservation(Decimal("100000")))
        switch = svc.kill_switch.status()
        released, by_human = svc.override(RiskLevel.DEFENSIVE, "alice", "loss reviewed")
        raw_items = DynamoStateStore(aws.resources.state_table, aws.dynamodb).query(RISK_PK)
        history = svc.history()
    # Then the level came back from the table, did not move by itself, and the switch is on
    assert restarted.level is RiskLevel.SHUTDOWN
    assert (still.level, none) == (RiskLevel.SHUTDOWN, None)
    assert switch.on and "RiskGuard SHUTDOWN" in switch.reason and "drawdown" in switch.reason
    # And the human release is the second logged transition, with actor, reason and time
    assert released.level is RiskLevel.DEFENSIVE
    assert [(t.from_level, t.to_level, t.actor) for t in history] == [
        (RiskLevel.NORMAL, RiskLevel.SHUTDOWN, "system:riskguard"),
        (RiskLevel.SHUTDOWN, RiskLevel.DEFENSIVE, "alice"),
    ]
    assert history[1] == by_human
    assert sorted(i["sk"] for i in raw_items) == [
        "current",
        f"transition#{(T0 + timedelta(hours=1)).isoformat()}",
        f"transition#{clock.now().isoformat()}",
    ]
