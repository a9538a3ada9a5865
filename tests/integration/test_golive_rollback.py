"""The go-live rollback's order step over the typed book (``GoLiveService.cancel_open_orders``):
every non-terminal order is cancelled with the run's reason, a finished one is left, and a stored
order that cannot be read is named for an operator, never silently skipped, while the others are
still cancelled. On the in-memory order ledger (its contract with DynamoDB:
tests/integration/test_store_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.golive import GOLIVE_ACTOR
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.services.golive import Failure, GoLiveService
from tests.fakes import InMemoryKillSwitch, InMemoryOrderLedger, InMemoryStateStore
from tests.support.killswitch import rollback_engaged_of

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BAR_MS = 1_709_251_200_000


def _golive(
    *,
    orders: InMemoryOrderLedger | None = None,
    switch: InMemoryKillSwitch | None = None,
    actor: str = GOLIVE_ACTOR,
) -> GoLiveService:
    """The go-live service on the in-memory fakes at ``T0`` (a fresh ledger and an OFF switch
    unless given)."""
    return GoLiveService(
        store=InMemoryStateStore(),
        orders=orders if orders is not None else InMemoryOrderLedger(),
        kill_switch=switch if switch is not None else InMemoryKillSwitch(T0),
        clock=FixedClock(T0),
        actor=actor,
    )


def _recorded(
    ledger: InMemoryOrderLedger, bar_ms: int, status: OrderStatus, mode: str = "paper"
) -> str:
    """A BTC decision recorded (sent to ``mode``'s venue) and moved to ``status``."""
    intent = OrderIntent(
        "golive", Symbol("BTC/USDT"), Side.BUY, Intent.OPEN, bar_ms, Quantity.of("0.1"),
        Price.of("43000"),
    )  # fmt: skip
    order = Order.new(intent, created_at=T0, mode=mode)
    assert ledger.record(order) is True
    path = {
        OrderStatus.NEW: [],
        OrderStatus.SUBMITTED: [OrderStatus.SUBMITTED],
        OrderStatus.ACCEPTED: [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED],
        OrderStatus.FILLED: [OrderStatus.SUBMITTED, OrderStatus.FILLED],
    }[status]
    for step in path:
        change = order.move(step, at=T0)
        assert ledger.update_status(order.client_order_id.value, change)
        order = order.moved_to(step)
    return order.client_order_id.value


def test_the_rollback_cancels_every_open_order_and_names_an_unreadable_one() -> None:
    # Given open orders (NEW, SUBMITTED, ACCEPTED), a filled one and a damaged open record
    ledger = InMemoryOrderLedger()
    new = _recorded(ledger, BAR_MS, OrderStatus.NEW)
    submitted = _recorded(ledger, BAR_MS + 3_600_000, OrderStatus.SUBMITTED)
    accepted = _recorded(ledger, BAR_MS + 7_200_000, OrderStatus.ACCEPTED)
    filled = _recorded(ledger, BAR_MS + 10_800_000, OrderStatus.FILLED)
    damaged = "d" * 32
    assert ledger.put_new(
        {"client_order_id": damaged, "symbol": "ETH/USDT", "side": "buy", "intent": "open",
         "quantity": Decimal("1"), "reference_price": Decimal("2000"), "status": "ACCEPTED",
         "signal_bar_ms": BAR_MS, "created_at": T0.isoformat()}  # no strategy: unreadable
    )  # fmt: skip
    service = _golive(orders=ledger)
    # When the rollback's order step runs
    result = service.cancel_open_orders("run-1", Failure(Error="SloBreached"))
    # Then every readable open order is cancelled with the run's reason, the filled one left
    assert sorted(result["canceled"]) == sorted([new, submitted, accepted])
    assert result["skipped_changed_concurrently"] == []
    for key in (new, submitted, accepted):
        stored = ledger.find(key)
        assert stored is not None and stored.status is OrderStatus.CANCELED
        assert stored.facts.cancel_reason == "go-live run-1 rollback: SloBreached"
    done = ledger.find(filled)
    assert done is not None and done.status is OrderStatus.FILLED
    # and the damaged record is named (key, coin, why), left as stored for an operator
    (unreadable,) = result["unreadable"]
    assert unreadable.startswith(f"record {damaged!r} of ETH/USDT unreadable: KeyError")
    assert ledger.get(damaged)["status"] == "ACCEPTED"  # type: ignore[index]


def _switch(reason: str, actor: str, marker: str | None = None) -> KillSwitchStatus:
    return KillSwitchStatus(on=True, reason=reason, actor=actor, at=T0, golive_rollback=marker)


def test_the_switch_the_rollback_engages_carries_its_marker_and_reads_as_a_rollback() -> None:
    # Given the kill-switch the rollback engages (a manual rollback, as the CLI's operator)
    service = _golive(actor="operator:cli")
    step = service.engage_kill_switch("run-7", Failure(Error="CanarySloBreach", Cause="uptime"))
    written = service.kill_switch.status()
    # Then the value carries the run as its marker, and the sweep reads it as the rollback's
    assert (written.golive_rollback, step["golive_rollback"]) == ("run-7", "run-7")
    assert rollback_engaged_of(written), written
    assert service.kill_switch.status().reason == "go-live run-7 rollback: CanarySloBreach: uptime"
    # and a rollback run again re-engages it, marker kept (not an "operator" switch to keep)
    service.engage_kill_switch("run-7", Failure(Error="CanarySloBreach", Cause="again"))
    assert service.kill_switch.status().golive_rollback == "run-7"


def test_the_marker_decides_a_rollback_switch_never_its_reason_text() -> None:
    # A reworded reason with the marker is still the rollback's
    assert rollback_engaged_of(_switch("canary halted: uptime", "operator:cli", "run-7"))
    # an operator's reason typed like a rollback's, with no marker, is an operator's stop
    for actor in ("alice", "operator:cli", "iam:arn:aws:iam::123456789012:user/ops", "alarm"):
        assert not rollback_engaged_of(_switch("go-live run-7 rollback: by hand", actor)), actor
    assert not rollback_engaged_of(_switch("operator test", "alice"))


def test_a_rollback_switch_stored_before_the_marker_reads_as_the_rollback_s() -> None:
    # Given values the previous version stored: the deployed rollback's (actor system:golive)
    assert rollback_engaged_of(_switch("go-live run-7 rollback: CanarySloBreach: x", GOLIVE_ACTOR))
    assert rollback_engaged_of(_switch("go-live run-7 rollback", GOLIVE_ACTOR))
    # but not another writer's text, nor a reason that only contains the rollback's
    assert not rollback_engaged_of(
        _switch("kill-switch on: go-live run-7 rollback: x", GOLIVE_ACTOR)
    )
    assert not rollback_engaged_of(_switch("go-live run-7 rollbacks: x", GOLIVE_ACTOR))
    assert not rollback_engaged_of(_switch("go-live run-7 rollback: x", "system:riskguard"))


def test_a_forged_marker_that_is_no_run_id_is_refused() -> None:
    for forged in ("", "run 7", "x" * 81, "run-7\n"):
        with pytest.raises(ValueError, match="golive_rollback"):
            _switch("go-live run-7 rollback", "alice", forged)


def test_a_rollback_without_the_venue_never_cancels_an_order_sent_to_it_in_the_store() -> None:
    # Given an order resting on the testnet venue and a paper one, and a rollback with no venue
    ledger = InMemoryOrderLedger()
    on_testnet = _recorded(ledger, BAR_MS, OrderStatus.ACCEPTED, mode="testnet")
    paper = _recorded(ledger, BAR_MS + 3_600_000, OrderStatus.ACCEPTED)
    service = _golive(orders=ledger)
    # When the rollback's order step runs
    result = service.cancel_open_orders("run-1", Failure(Error="SloBreached"))
    # Then the paper order is cancelled, the testnet one left as stored and named in doubt
    assert result["canceled"] == [paper]
    assert list(result["in_doubt"]) == [on_testnet]
    assert "sent to the testnet venue" in result["in_doubt"][on_testnet]
    stored = ledger.find(on_testnet)
    assert stored is not None and stored.status is OrderStatus.ACCEPTED


def test_a_manual_rollback_stored_before_the_marker_gets_it_when_the_rollback_runs_again() -> None:
    # Given the switch an earlier `cst golive rollback` stored, before the marker existed (its
    # actor operator:cli, its reason the rollback's, no marker): read as an operator's stop
    switch = InMemoryKillSwitch(T0)
    switch.set(True, "go-live run-7 rollback: ManualRollback: canary stalled", "operator:cli")
    assert not rollback_engaged_of(switch.status())
    service = _golive(switch=switch, actor="operator:cli")
    # When the operator runs the rollback again, as docs/golive.md ("The rollback's kill-switch
    # marker") tells them to
    service.engage_kill_switch("run-7", Failure(Error="ManualRollback", Cause="canary stalled"))
    # Then the run's marker is written, and the sweeps keep the held positions' stops again
    assert switch.status().golive_rollback == "run-7", switch.status()
    assert rollback_engaged_of(switch.status())


def test_a_switch_another_actor_holds_with_a_rollback_like_reason_is_kept_by_the_rollback() -> None:
    # Given an operator's stop whose reason reads like this run's rollback (no marker)
    switch = InMemoryKillSwitch(T0)
    switch.set(True, "go-live run-7 rollback: by hand", "alice")
    service = _golive(switch=switch, actor="operator:cli")
    # When the run is rolled back
    step = service.engage_kill_switch("run-7", Failure(Error="ManualRollback", Cause="stalled"))
    # Then the operator's stop is kept as it is: no marker, its sweeps cancel every order
    assert step["kept"] is True
    assert (switch.status().actor, switch.status().golive_rollback) == ("alice", None)
    assert not rollback_engaged_of(switch.status())
