"""Sentiment agent and the Alternative.me Fear & Greed adapter.

The payload below is the example response printed in the API section of the Alternative.me
documentation (https://alternative.me/crypto/fear-and-greed-index/ , "API" → ``/fng/``),
typed in from that page — this machine has no internet access, so it was not fetched here. The
second payload is the sample response shown for ``https://api.alternative.me/fng/?limit=N`` in
https://bt.brrd.tech/docs/tutorials/external-indicators-fear-greed .
"""

from datetime import UTC, datetime

import pytest

from cryptosmarttrader.adapters.sentiment_source import (
    AlternativeMeFearGreed,
    load_readings,
    parse_fng_payload,
)
from cryptosmarttrader.domain.agents.sentiment import (
    NO_SOURCE,
    SentimentReading,
    SentimentUnavailableError,
    sentiment_votes,
)

DOC_PAYLOAD = """{
    "name": "Fear and Greed Index",
    "data": [
        {
            "value": "40",
            "value_classification": "Fear",
            "timestamp": "1551157200",
            "time_until_update": "68499"
        }
    ],
    "metadata": {
        "error": null
    }
}"""

TUTORIAL_PAYLOAD = """{
"name": "Fear and Greed Index",
"data": [
{"value": "47", "value_classification": "Neutral", "timestamp": "1777248000"},
{"value": "33", "value_classification": "Fear", "timestamp": "1777161600"}
],
"metadata": {"error": null}
}"""

DOC_TS = 1_551_157_200_000


def test_documented_payload_parses_into_a_contrarian_vote() -> None:
    # Given the documented /fng/ response (value 40, "Fear")
    readings = parse_fng_payload(DOC_PAYLOAD)
    assert readings == [SentimentReading(DOC_TS, 40.0, "Fear", "alternative.me fear & greed")]
    # When the agent votes an hour later
    votes = sentiment_votes(["bitcoin", "ethereum"], DOC_TS + 3_600_000, readings)
    # Then both coins get the same mildly bullish contrarian vote: z = (50 - 40) / 25 = 0.4
    assert votes["probability"].to_list() == pytest.approx([1 / (1 + 2.718281828459045**-0.4)] * 2)
    assert votes["confidence"].to_list() == pytest.approx([0.5 * 0.4 / 2] * 2)
    day = datetime.fromtimestamp(DOC_TS / 1000, tz=UTC).strftime("%Y-%m-%d")
    assert votes["reasons"][0].to_list() == [
        f"alternative.me fear & greed: 40 (Fear, reading of {day}) — contrarian bullish"
    ]
    assert votes["abstain_reason"].null_count() == 2
    # And the vote is about the decision, like every other agent's (the ensemble joins on it)
    assert votes["ts"].to_list() == [DOC_TS + 3_600_000] * 2


def test_latest_reading_at_or_before_asof_is_used() -> None:
    readings = parse_fng_payload(TUTORIAL_PAYLOAD)
    assert [r.value for r in readings] == [47.0, 33.0]  # newest first
    # Given an as-of between the two readings, the newer one (not yet published) is ignored
    votes = sentiment_votes(["x"], 1_777_161_600_000 + 1, readings)
    assert votes["reasons"][0][0].startswith(
        "alternative.me fear & greed: 33 (Fear, reading of 2026-04-26)"
    )


def test_no_source_unreachable_stale_or_future_only_abstain_with_reason() -> None:
    assert sentiment_votes(["x"], DOC_TS, None)["abstain_reason"][0] == NO_SOURCE
    assert load_readings(None) == (None, NO_SOURCE)
    down = sentiment_votes(["x"], DOC_TS, None, "alternative.me fear & greed: unreachable (x)")
    assert down["abstain_reason"][0] == "alternative.me fear & greed: unreachable (x)"
    readings = parse_fng_payload(DOC_PAYLOAD)
    stale = sentiment_votes(["x"], DOC_TS + 3 * 86_400_000, readings)
    assert stale["abstain_reason"][0] == (
        "sentiment reading from alternative.me fear & greed is stale (72 h old)"
    )
    early = sentiment_votes(["x"], DOC_TS - 1, readings)
    assert early["abstain_reason"][0] == "no sentiment reading at or before the as-of"
    assert early["probability"][0] is None


def test_unreachable_source_becomes_a_reason_not_a_value() -> None:
    # Given a source whose host does not resolve (no network call leaves this machine)
    source = AlternativeMeFearGreed(url="https://invalid.invalid/fng/", timeout_s=1.0)
    readings, reason = load_readings(source)
    assert readings is None
    assert reason is not None
    assert reason.startswith("alternative.me fear & greed: unreachable")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "malformed JSON"),
        ('{"data": [], "metadata": {"error": null}}', "no readings"),
        ('{"data": [{"value": "x"}], "metadata": {}}', "reading 0 unusable"),
        (
            '{"data": [{"value": "140", "value_classification": "?", "timestamp": "1"}]}',
            "reading 0 unusable",
        ),
        ('{"data": [], "metadata": {"error": "rate limited"}}', "API error 'rate limited'"),
    ],
)
def test_malformed_payloads_raise_with_the_reason(payload: str, message: str) -> None:
    with pytest.raises(SentimentUnavailableError, match=message):
        parse_fng_payload(payload)
