"""The kill-switch's stored value (``{"on", "reason", "actor", "at"}`` JSON, plus
``"golive_rollback": "<run id>"`` when a go-live rollback engaged it) and its fail-closed reading.
No AWS library: the SSM adapter and the read-only saved-state path share it.

Validated by pydantic's validator core (``pydantic_core``: the engine under every pydantic model,
same rules, same error messages) rather than a ``BaseModel``: importing ``pydantic.BaseModel``
costs ~0.37x ``import boto3`` and building one model ~0.12x more, which alone would put the
alarm → kill-switch Lambda over its 1.5x cold-start budget (``bench/bench_cold_import.py``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import SchemaValidator, ValidationError, to_jsonable_python
from pydantic_core import core_schema as cs

from cryptosmarttrader.domain.killswitch import RUN_ID_PATTERN  # no pydantic model import

__all__ = ["FAIL_CLOSED_ACTOR", "KillSwitchStatus", "fail_closed", "parse_switch_value"]

FAIL_CLOSED_ACTOR = "system:fail-closed"

# Strict: ``"on": "false"`` is malformed, not False; a naive time or an unknown key is malformed.
_STORED: Any = SchemaValidator(
    cs.typed_dict_schema(
        {
            "on": cs.typed_dict_field(cs.bool_schema(strict=True)),
            "reason": cs.typed_dict_field(cs.str_schema(min_length=1, strict=True)),
            "actor": cs.typed_dict_field(cs.str_schema(min_length=1, strict=True)),
            "at": cs.typed_dict_field(cs.datetime_schema(tz_constraint="aware", strict=True)),
            "known": cs.typed_dict_field(cs.bool_schema(strict=True), required=False),
            # the go-live rollback's marker (domain.golive.rollback_engaged): a run id
            "golive_rollback": cs.typed_dict_field(
                cs.str_schema(pattern=RUN_ID_PATTERN, strict=True), required=False
            ),
        },
        extra_behavior="forbid",
        cls_name="KillSwitchStatus",
    )
)


@dataclass(frozen=True)
class KillSwitchStatus:
    """The stored kill-switch value.

    ``known`` is not stored: it says whether this status was read (True) or stands for a read
    that failed or a malformed value (False, always with ``on=True``: fail closed). Built by
    code (``SsmKillSwitch.set``, :func:`fail_closed`) from checked values; read from storage
    only through :meth:`model_validate_json`.

    ``golive_rollback``: the run whose go-live rollback engaged the switch (the structured
    marker of ``domain.golive.rollback_engaged``), None otherwise; stored only when set, so a
    value without it is byte for byte what earlier versions wrote."""

    on: bool
    reason: str
    actor: str
    at: datetime
    known: bool = True
    golive_rollback: str | None = None

    def __post_init__(self) -> None:
        if not (self.reason and self.actor) or self.at.utcoffset() is None:
            raise ValueError("a kill-switch status needs a reason, an actor and an aware time")
        if self.golive_rollback is not None and not re.fullmatch(
            RUN_ID_PATTERN, self.golive_rollback
        ):
            raise ValueError("a kill-switch status's golive_rollback must be a go-live run id")

    @classmethod
    def model_validate_json(cls, raw: str | bytes) -> KillSwitchStatus:
        """The status a stored JSON value holds; raises ``pydantic_core.ValidationError``."""
        return cls(**_STORED.validate_json(raw))

    def model_dump(self, *, mode: str = "json", exclude: set[str] | None = None) -> dict[str, Any]:
        """The value as pydantic would dump it in JSON mode (``at`` as ISO-8601, ``Z``);
        ``known`` is never part of it (it is not stored), nor ``golive_rollback`` when None."""
        if mode != "json":
            raise ValueError(f"only the JSON dump is supported, got mode={mode!r}")
        return {
            f.name: to_jsonable_python(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "known"
            and f.name not in (exclude or set())
            and not (f.name == "golive_rollback" and self.golive_rollback is None)
        }


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
    return stored if stored.known else dataclasses.replace(stored, known=True)


def fail_closed(now: datetime, reason: str) -> KillSwitchStatus:
    """What an unknown switch stands for: ON, ``known=False``, with why it is unknown."""
    return KillSwitchStatus(on=True, reason=reason, actor=FAIL_CLOSED_ACTOR, at=now, known=False)
