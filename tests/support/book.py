"""The book a deployment's functions share — orders, positions, the state table and the
kill-switch — on the in-memory fakes (``tests/fakes.py``), for the builders that put a service
on them (``tests/support/live_venue.py``, ``tests/support/cycle.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptosmarttrader.domain.clock import Clock
from tests.fakes import (
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemoryStateStore,
)


@dataclass
class FakeBook:
    """The stores on fakes, shared by every service built over them (what a restart finds), as
    ``wiring.trading_cycle`` builds them on the orders, positions and state tables and the SSM
    kill-switch parameter. The kill-switch starts off, as a fresh deployment seeds it, and
    times each write by ``clock``."""

    clock: Clock
    orders: InMemoryOrderLedger = field(default_factory=InMemoryOrderLedger)
    positions: InMemoryPositionLedger = field(default_factory=InMemoryPositionLedger)
    state: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    switch: InMemoryKillSwitch = field(init=False)

    def __post_init__(self) -> None:
        self.switch = InMemoryKillSwitch(self.clock.now(), self.clock)
