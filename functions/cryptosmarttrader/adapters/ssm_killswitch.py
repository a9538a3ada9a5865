"""The kill-switch: an SSM String parameter holding ``{"on", "reason", "actor", "at"}`` JSON.

Reads go through Powertools Parameters (``SSMProvider`` over the injected boto3 client). The
cache is kept here, timed by the injected clock rather than Powertools' wall-clock ``max_age``,
so tests and replays control it. Reading FAILS CLOSED: a missing, unreadable or malformed
parameter counts as ON, and the status says why, with ``known=False``: "may I trade?" is
answered no, but nothing may be destroyed on it (cancelling decisions or open orders needs a
switch read as ON, ``known=True``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.domain.clock import Clock

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

__all__ = ["FAIL_CLOSED_ACTOR", "KillSwitchStatus", "SsmKillSwitch"]

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


class SsmKillSwitch:
    def __init__(
        self, param_name: str, client: SSMClient, clock: Clock, cache_seconds: float = 5
    ) -> None:
        if cache_seconds < 0:
            raise ValueError(f"cache_seconds must be >= 0, got {cache_seconds}")
        self._name = param_name
        self._client = client
        self._provider = SSMProvider(boto3_client=client)
        self._clock = clock
        self._ttl = timedelta(seconds=cache_seconds)
        self._cached: tuple[datetime, KillSwitchStatus] | None = None

    def is_on(self) -> bool:
        """True when trading must stop (also when the parameter cannot be read or parsed)."""
        return self.status().on

    def status(self) -> KillSwitchStatus:
        now = self._clock.now()
        if self._cached is not None:
            fetched_at, status = self._cached
            if now - fetched_at < self._ttl:
                return status
        status = self._read(now)
        self._cached = (now, status)
        return status

    def set(self, on: bool, reason: str, actor: str) -> KillSwitchStatus:
        """Write the switch (Overwrite) and drop the cache. ``reason`` and ``actor`` are required."""
        status = KillSwitchStatus(
            on=on, reason=reason.strip(), actor=actor.strip(), at=self._clock.now()
        )
        self._client.put_parameter(
            Name=self._name,
            Value=json.dumps(status.model_dump(mode="json"), sort_keys=True),
            Type="String",
            Overwrite=True,
        )
        self.invalidate()
        return status

    def invalidate(self) -> None:
        self._cached = None

    def _read(self, now: datetime) -> KillSwitchStatus:
        try:
            raw = self._provider.get(self._name, force_fetch=True)
        except (GetParameterError, ClientError, BotoCoreError) as exc:
            return self._closed(now, f"kill-switch parameter {self._name} unreadable: {exc}")
        if not isinstance(raw, str):
            return self._closed(now, f"kill-switch parameter {self._name} is not a string")
        try:
            stored = KillSwitchStatus.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            return self._closed(now, f"kill-switch parameter {self._name} malformed: {problems}")
        return stored if stored.known else stored.model_copy(update={"known": True})

    @staticmethod
    def _closed(now: datetime, reason: str) -> KillSwitchStatus:
        return KillSwitchStatus(
            on=True, reason=reason, actor=FAIL_CLOSED_ACTOR, at=now, known=False
        )
