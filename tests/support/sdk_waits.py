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
