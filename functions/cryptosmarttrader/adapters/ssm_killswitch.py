"""The kill-switch: an SSM String parameter holding ``{"on", "reason", "actor", "at"}`` JSON
(and ``"golive_rollback"`` when a go-live rollback engaged it: ``adapters.killswitch_value``).

Reads are one ``GetParameter`` on the injected boto3 client (no Powertools Parameters: its
import is a tenth of the alarm → kill-switch Lambda's cold start, for one call). The cache is kept
here, timed by the injected clock rather than Powertools' wall-clock ``max_age``,
so tests and replays control it. Reading FAILS CLOSED: a missing, unreadable or malformed
parameter counts as ON, and the status says why, with ``known=False``: "may I trade?" is
answered no, but nothing may be destroyed on it (cancelling decisions or open orders needs a
switch read as ON, ``known=True``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.adapters.killswitch_value import (
    FAIL_CLOSED_ACTOR,
    KillSwitchStatus,
    fail_closed,
    parse_switch_value,
)
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.killswitch import (
    MAX_ACTOR_CHARS,
    MAX_REASON_CHARS,
    check_text,
    encoded_value,
)

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

__all__ = ["FAIL_CLOSED_ACTOR", "KillSwitchStatus", "SsmKillSwitch"]


class SsmKillSwitch:
    def __init__(
        self, param_name: str, client: SSMClient, clock: Clock, cache_seconds: float = 5
    ) -> None:
        if cache_seconds < 0:
            raise ValueError(f"cache_seconds must be >= 0, got {cache_seconds}")
        self._name = param_name
        self._client = client
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

    def set(
        self,
        on: bool,
        reason: str,
        actor: str,
        *,
        at: datetime | None = None,
        golive_rollback: str | None = None,
    ) -> KillSwitchStatus:
        """Write the switch (Overwrite) and drop the cache.

        ``reason`` and ``actor`` are required, printable (no control or formatting character)
        and short enough for the encoded value to fit SSM's 4 KB (``domain.killswitch``); a
        violation raises :class:`DomainError` (a ``ValueError``) and writes nothing. ``at``
        (default: now) lets a writer that re-affirms an existing value keep its time. A failed
        ``PutParameter`` raises ``ClientError`` / ``BotoCoreError``: it is never swallowed.
        ``golive_rollback`` (a run id): the go-live rollback's marker, passed only by the
        rollback (and kept by a writer that re-affirms a value); no operator path passes it.
        """
        status = KillSwitchStatus(
            on=on,
            reason=check_text("reason", reason, MAX_REASON_CHARS),
            actor=check_text("actor", actor, MAX_ACTOR_CHARS),
            at=self._clock.now() if at is None else at,
            golive_rollback=golive_rollback,
        )
        value = encoded_value(status.model_dump(mode="json", exclude={"known"}))
        self._client.put_parameter(Name=self._name, Value=value, Type="String", Overwrite=True)
        self.invalidate()
        return status

    def invalidate(self) -> None:
        self._cached = None

    def _read(self, now: datetime) -> KillSwitchStatus:
        try:
            raw = self._client.get_parameter(Name=self._name)["Parameter"].get("Value")
        except (ClientError, BotoCoreError, KeyError) as exc:
            return fail_closed(now, f"kill-switch parameter {self._name} unreadable: {exc}")
        return parse_switch_value(raw, self._name, now)
