"""The go-live rollback's reading of a kill-switch value (``domain.golive.rollback_engaged``),
on the value itself, as the services call it with its fields."""

from __future__ import annotations

from cryptosmarttrader.domain.golive import rollback_engaged
from cryptosmarttrader.ports import KillSwitchState


def rollback_engaged_of(switch: KillSwitchState) -> bool:
    """Whether ``switch`` holds for a go-live rollback (its marker, or a legacy value)."""
    return rollback_engaged(
        golive_rollback=switch.golive_rollback, actor=switch.actor, reason=switch.reason
    )
