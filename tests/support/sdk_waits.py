"""boto3's retries without their waits: every retry is still made, none waits on the wall clock."""

from __future__ import annotations

import botocore.retries.bucket as bucket
import botocore.retries.standard as standard
import pytest


class _HourPerReading(bucket.Clock):
    """An hour passes between two readings: the adaptive mode's send-rate bucket (which
    throttling turns on) has always refilled, so it never waits for a token."""

    def __init__(self) -> None:
        self._now = 0.0

    def current_time(self) -> float:
        self._now += 3600.0
        return self._now


def without_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """For clients built from now on: no backoff between attempts, no rate-limiter wait. The
    attempts, their count and what each one is answered stay botocore's."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0)
    monkeypatch.setattr(bucket, "Clock", _HourPerReading)  # read at a client's creation


def without_exchange_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """For exchange adapters built from now on without a sleep of their own: every retry of
    the retry policy is still made, and the backoff it would have slept is recorded in the
    returned list instead of waited on the wall clock."""
    from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange

    waited: list[float] = []
    built = CcxtExchange.__init__

    def without_waits(self: CcxtExchange, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("sleep", waited.append)
        built(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(CcxtExchange, "__init__", without_waits)
    return waited
