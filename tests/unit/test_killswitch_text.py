"""Kill-switch text rules (domain.killswitch): printable reasons and actors, a value SSM stores."""

from __future__ import annotations

import json

import pytest

from cryptosmarttrader.domain.killswitch import (
    MAX_VALUE_BYTES,
    check_reason,
    check_text,
    encoded_value,
    escape_controls,
    printable,
)
from cryptosmarttrader.domain.types import DomainError


@pytest.mark.parametrize(
    ("text", "code", "position"),
    [
        ("ok\x1b[2K", "U+001B", 3),
        ("a\tb", "U+0009", 2),
        ("x\u2028y", "U+2028", 2),
        ("\u2066isolate\u2069", "U+2066", 1),
        ("soft\u00adhyphen", "U+00AD", 5),
    ],
)
def test_control_and_format_characters_are_named_with_their_position(
    text: str, code: str, position: int
) -> None:
    with pytest.raises(DomainError) as err:
        check_text("reason", text, 100)
    assert f"reason contains {code}" in str(err.value)
    assert f"at position {position}:" in str(err.value)


def test_plain_text_is_kept_stripped_and_non_ascii_letters_are_fine() -> None:
    assert check_text("reason", "  Börse geschlossen — 東京  \n", 100) == "Börse geschlossen — 東京"
    with pytest.raises(DomainError, match="must not be empty"):
        check_text("reason", " \n ", 100)


def test_a_reason_of_the_maximum_length_always_fits_the_value() -> None:
    # 500 four-byte characters and a long actor still fit SSM's 4096 bytes (UTF-8, not escaped)
    reason = check_reason("\U0001f680" * 500)
    value = {"on": True, "reason": reason, "actor": "a" * 640, "at": "2024-01-01T00:00:00Z"}
    assert len(encoded_value(value).encode()) <= MAX_VALUE_BYTES
    with pytest.raises(DomainError, match="at most 500 allowed"):
        check_reason("x" * 501)


def test_the_published_pattern_and_the_check_refuse_the_same_characters() -> None:
    import re
    import unicodedata

    from cryptosmarttrader.domain.killswitch import REASON_PATTERN

    pattern = re.compile(REASON_PATTERN)
    mismatched = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        by_pattern = pattern.match(f"abc{char}x") is None
        try:
            check_text("reason", f"abc{char}x", 10)
            by_check = False
        except DomainError:
            by_check = True
        if by_pattern != by_check:
            mismatched.append(hex(cp))
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            assert by_check, hex(cp)  # every control/format character of this Python's Unicode
    assert mismatched == []
    assert pattern.match("  ok go ") and not pattern.match("ok") and not pattern.match("a\u202ebc")


def test_the_encoded_value_is_refused_past_ssm_s_limit() -> None:
    small = {"on": True, "reason": "r", "actor": "a", "at": "2024-01-01T00:00:00Z"}
    assert json.loads(encoded_value(small)) == small
    assert encoded_value({**small, "reason": "é"}) == encoded_value({**small, "reason": "é"})
    assert "é" in encoded_value({**small, "reason": "é"})  # UTF-8, not \\u-escaped
    with pytest.raises(DomainError, match=f"SSM stores at most {MAX_VALUE_BYTES}"):
        encoded_value({**small, "reason": "x" * MAX_VALUE_BYTES})


def test_printable_and_escape_controls_neutralise_what_check_text_refuses() -> None:
    hostile = "a\x1b[2K\rb\u202ec"
    assert printable(hostile, 100) == "a [2K b c"
    assert printable("x" * 50, 10) == "x" * 10
    assert escape_controls(hostile) == "a\\x1b[2K\\rb\\u202ec"


def test_a_system_writer_s_reason_always_passes_the_checks() -> None:
    from cryptosmarttrader.domain.killswitch import writable_reason

    for quoted in ["x" * 5000, "a\nb\x1b[2K\u202ec", "\U0001f680" * 500, "\x00\x01", ""]:
        text = writable_reason(quoted, "fallback")
        assert check_reason(text) == text  # printable, short, fits the value
    assert writable_reason("\x00\x01", "RiskGuard SHUTDOWN") == "RiskGuard SHUTDOWN"
    assert writable_reason("Börse zu", "f") == "Börse zu"  # kept when it fits
