"""Clocks. Domain code never calls ``datetime.now()``: it receives a :class:`Clock`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


@dataclass
class FixedClock:
    """A clock that only moves when told to (tests, replays, backtests)."""

    current: datetime = field(default_factory=lambda: datetime(2020, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware UTC datetime")

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current = self.current + delta
