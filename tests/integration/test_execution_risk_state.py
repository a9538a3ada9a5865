"""Risk level persistence in the state table: transitions logged, level survives a restart.

On AWS (the embedded AWS or moto): a restart over the persisted state, an SSM write throttled
until the SDK's retries are spent, the current item deleted by hand on the table, and two
writers racing on the table's conditional write. The levels' logic runs on the in-memory fakes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.risk import RiskLevel, RiskObservation
from cryptosmarttrader.services.risk_state import RISK_PK, RiskStateConflictError, RiskStateService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.faults import ExhaustedRetries
from cst_devtools.local_aws import LocalAws, embedded_aws
from tests.fakes import InMemoryKillSwitch, InMemoryStateStore
from tests.support.aws import moto_stack

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


# -- faults on the path the execution function runs: its SsmKillSwitch and DynamoStateStore over
# -- boto3 clients built like the function's (adaptive retries), on moto: the SDK's retries
# -- spent, an item deleted outside the product, a conditional write losing a race


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch, now=T0) as clients:
        yield clients


def _on_moto(
    aws: AwsClients, clock: FixedClock, store: DynamoStateStore | None = None
) -> RiskStateService:
    res = aws.resources
    switch = SsmKillSwitch(res.kill_switch_param, aws.ssm, clock)
    return RiskStateService(store or DynamoStateStore(res.state_table, aws.dynamodb), switch, clock)


def _stored_switch(aws: AwsClients) -> dict[str, Any]:
    raw = aws.ssm.get_parameter(Name=aws.resources.kill_switch_param)["Parameter"]["Value"]
    value: dict[str, Any] = json.loads(raw)
    return value


def test_a_failed_switch_write_during_escalation_is_retried_by_the_next_cycle(
    aws: AwsClients,
) -> None:
    clock = FixedClock(T0)
    svc = _on_moto(aws, clock)
    faults = ExhaustedRetries(aws.ssm)
    svc.observe(RiskObservation(Decimal("100000")))

    # Given SSM throttles the switch write (every retry) when equity falls 20 % from its peak
    clock.advance(timedelta(hours=1))
    faults.exhaust("PutParameter", 1)
    with pytest.raises(ClientError, match="ThrottlingException"):
        svc.observe(RiskObservation(Decimal("80000")))

    # Then the escalation was not committed: the level did not move without the switch
    assert faults.injected == {"PutParameter": 1}
    assert svc.load().level is RiskLevel.NORMAL
    assert _stored_switch(aws)["on"] is False

    # When the next hourly cycle observes the same loss
    clock.advance(timedelta(hours=1))
    _, move = svc.observe(RiskObservation(Decimal("80000")))

    # Then the escalation happens again, this time with the switch on, and is logged once
    assert move is not None and (move.from_level, move.to_level) == (
        RiskLevel.NORMAL,
        RiskLevel.SHUTDOWN,
    )
    assert svc.load().level is RiskLevel.SHUTDOWN
    stored = _stored_switch(aws)
    assert stored["on"] is True and stored["actor"] == "system:riskguard"
    assert stored["reason"].startswith("RiskGuard SHUTDOWN: drawdown 20.00%")
    assert [t.to_level for t in svc.history()] == [RiskLevel.SHUTDOWN]


def test_a_deleted_risk_state_item_is_rebuilt_from_the_transition_log(aws: AwsClients) -> None:
    # Given SHUTDOWN was reached and logged (on a stack that had stored nothing before)
    clock = FixedClock(T0)
    svc = _on_moto(aws, clock)
    assert svc.stored() is None
    svc.observe(RiskObservation(Decimal("100000")))
    clock.advance(timedelta(hours=1))
    svc.observe(RiskObservation(Decimal("80000")))

    # When the current item is deleted (by hand, a bad migration, a restore)
    aws.dynamodb.delete_item(
        TableName=aws.resources.state_table,
        Key={"pk": {"S": RISK_PK}, "sk": {"S": "current"}},
    )

    # Then the level still reads SHUTDOWN, since the logged transition, saying why
    rebuilt = svc.load()
    assert rebuilt.level is RiskLevel.SHUTDOWN
    assert rebuilt.since == T0 + timedelta(hours=1)
    assert (
        rebuilt.reason.startswith("rebuilt from the transition log")
        and "drawdown" in rebuilt.reason
    )
    # and it is what the cycle's replay guard reads: a stack that lost the item is not a fresh
    # stack, so a cycle before the logged transition is still refused
    assert svc.stored() == rebuilt
    # and days of healthy metrics do not leave it (only a human does)
    clock.advance(timedelta(days=3))
    state, move = svc.observe(RiskObservation(Decimal("100000")))
    assert (state.level, move) == (RiskLevel.SHUTDOWN, None)


class _InterleavedStore(DynamoStateStore):
    """A store whose first read of the current state is followed by another writer's change."""

    def __init__(self, table: str, client: Any, other_writer: Callable[[], None]) -> None:
        super().__init__(table, client)
        self._other = other_writer

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = super().get(pk, sk)
        if (pk, sk) == (RISK_PK, "current") and self._other is not None:
            other, self._other = self._other, None  # type: ignore[assignment]
            other()
        return item


def test_two_writers_cannot_silently_overwrite_each_other(aws: AwsClients) -> None:
    # Given SHUTDOWN, and an operator releasing it to DEFENSIVE while a cycle is running
    clock = FixedClock(T0)
    operator = _on_moto(aws, clock)
    operator.observe(RiskObservation(Decimal("100000")))
    clock.advance(timedelta(hours=1))
    operator.observe(RiskObservation(Decimal("80000")))
    clock.advance(timedelta(hours=1))

    def release() -> None:
        operator.override(RiskLevel.DEFENSIVE, "alice", "loss reviewed")

    store = _InterleavedStore(aws.resources.state_table, aws.dynamodb, release)
    cycle = _on_moto(aws, clock, store)

    # When the cycle, which read SHUTDOWN before the release, stores its result
    with pytest.raises(RiskStateConflictError, match="changed since it was read"):
        cycle.observe(RiskObservation(Decimal("80000")))

    # Then the operator's release stands and is logged; the cycle wrote nothing
    assert operator.load().level is RiskLevel.DEFENSIVE
    assert [(t.to_level, t.actor) for t in operator.history()] == [
        (RiskLevel.SHUTDOWN, "system:riskguard"),
        (RiskLevel.DEFENSIVE, "alice"),
    ]
    # and the cycle's retry (reloading) proceeds from the released level (the day's 20 % loss
    # then demands EMERGENCY again, and turns the switch on)
    _, move = cycle.observe(RiskObservation(Decimal("80000")))
    assert move is not None and move.from_level is RiskLevel.DEFENSIVE


# -- the risk levels' logic on the in-memory fakes (``tests/fakes.py``; the state table's and the
# -- kill-switch's adapters keep the same contract, ``test_store_contract.py``)


def test_a_human_release_after_a_committed_escalation_is_not_overridden() -> None:
    # Given an escalation to EMERGENCY that turned the switch on
    clock = FixedClock(T0)
    switch = InMemoryKillSwitch(T0, clock)
    svc = RiskStateService(InMemoryStateStore(), switch, clock)
    svc.observe(RiskObservation(Decimal("100000")))
    clock.advance(timedelta(hours=1))
    assert svc.observe(RiskObservation(Decimal("84000")))[0].level is RiskLevel.EMERGENCY
    assert switch.status().on
    # When a human turns the switch off to flatten, and the next cycles still see the loss
    switch.set(False, "flatten", "alice")
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        svc.observe(RiskObservation(Decimal("84000")))
    # Then the switch stays off: only a transition writes it
    assert switch.status().on is False
    assert svc.load().level is RiskLevel.EMERGENCY
