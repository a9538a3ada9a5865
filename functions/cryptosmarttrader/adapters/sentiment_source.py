"""Sentiment sources: the Alternative.me Crypto Fear & Greed Index over HTTP.

API (public, no key): ``GET https://api.alternative.me/fng/?limit=N`` returns
``{"name": "Fear and Greed Index", "data": [{"value": "40", "value_classification": "Fear",
"timestamp": "1551157200", "time_until_update": "68499"}, ...], "metadata": {"error": null}}``
— values and Unix-second timestamps as strings, newest first.

Every failure (network, HTTP status, malformed JSON, a reading out of range, an API-reported
error) raises :class:`SentimentUnavailableError` with the reason; :func:`load_readings` turns
that into the ``(None, reason)`` pair the sentiment agent abstains with. Nothing is cached or
filled: a failed call yields no reading.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Final

from cryptosmarttrader.domain.agents.sentiment import (
    NO_SOURCE,
    SentimentReading,
    SentimentUnavailableError,
)
from cryptosmarttrader.ports import SentimentSource

__all__ = ["FNG_URL", "AlternativeMeFearGreed", "load_readings", "parse_fng_payload"]

FNG_URL: Final = "https://api.alternative.me/fng/"
SOURCE_NAME: Final = "alternative.me fear & greed"


def parse_fng_payload(raw: bytes | str) -> list[SentimentReading]:
    """Readings of one ``/fng/`` response body, newest first."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SentimentUnavailableError(f"{SOURCE_NAME}: malformed JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise SentimentUnavailableError(f"{SOURCE_NAME}: expected a JSON object")
    error = (payload.get("metadata") or {}).get("error")
    if error:
        raise SentimentUnavailableError(f"{SOURCE_NAME}: API error {error!r}")
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise SentimentUnavailableError(f"{SOURCE_NAME}: no readings in the response")
    out: list[SentimentReading] = []
    for i, item in enumerate(data):
        try:
            out.append(
                SentimentReading(
                    ts=int(item["timestamp"]) * 1000,
                    value=float(item["value"]),
                    classification=str(item["value_classification"]),
                    source=SOURCE_NAME,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SentimentUnavailableError(
                f"{SOURCE_NAME}: reading {i} unusable ({type(exc).__name__}: {exc})"
            ) from exc
    return sorted(out, key=lambda r: r.ts, reverse=True)


@dataclass(frozen=True)
class AlternativeMeFearGreed:
    """``SentimentSource`` over the public Alternative.me HTTP API."""

    url: str = FNG_URL
    timeout_s: float = 5.0

    @property
    def name(self) -> str:
        return SOURCE_NAME

    def readings(self, limit: int) -> list[SentimentReading]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not self.url.startswith("https://"):
            raise SentimentUnavailableError(f"{SOURCE_NAME}: refusing non-HTTPS URL {self.url}")
        request = urllib.request.Request(  # noqa: S310 - https only, checked above
            f"{self.url}?limit={limit}", headers={"User-Agent": "cryptosmarttrader"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise SentimentUnavailableError(f"{SOURCE_NAME}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SentimentUnavailableError(f"{SOURCE_NAME}: unreachable ({reason})") from exc
        return parse_fng_payload(body)


def load_readings(
    source: SentimentSource | None, limit: int = 30
) -> tuple[list[SentimentReading] | None, str | None]:
    """(readings, None) or (None, why not) — the pair ``sentiment_votes`` takes."""
    if source is None:
        return None, NO_SOURCE
    try:
        return source.readings(limit), None
    except SentimentUnavailableError as exc:
        return None, str(exc)
