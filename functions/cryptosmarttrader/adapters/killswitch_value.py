"""The kill-switch's stored value (``{"on", "reason", "actor", "at"}`` JSON) and its fail-closed
reading. No AWS library: the SSM adapter and the read-only saved-state path share it."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

__all__ = ["FAIL_CLOSED_ACTOR", "KillSwitchStatus", "fail_closed", "parse_switch_value"]

FAIL_CLOSED_ACTOR = "system:fail-closed"


class KillSwitchStatus(BaseModel):
    """The stored kill-switch value. Strict: ``"on": "false"`` is malformed, not False.

    ``known`` is not stored: it says whether this status was read (True) or stands for a read
    that failed or a malformed value (False, always with ``on=True``: fail closed)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    on: bool
    reason: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    at: AwareDatetime
    known: bool = Field(default=True, exclude=True)


def parse_switch_value(raw: object, name: str, now: datetime) -> KillSwitchStatus:
    """The status a stored value stands for; a missing, non-string or malformed value FAILS
    CLOSED: ON, ``known=False``, with the reason."""
    if raw is None:
        return fail_closed(now, f"kill-switch parameter {name} is missing")
    if not isinstance(raw, str):
        return fail_closed(now, f"kill-switch parameter {name} is not a string")
    try:
        stored = KillSwitchStatus.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        return fail_closed(now, f"kill-switch parameter {name} malformed: {problems}")
    return stored if stored.known else stored.model_copy(update={"known": True})


def fail_closed(now: datetime, reason: str) -> KillSwitchStatus:
    """What an unknown switch stands for: ON, ``known=False``, with why it is unknown."""
    return KillSwitchStatus(on=True, reason=reason, actor=FAIL_CLOSED_ACTOR, at=now, known=False)
