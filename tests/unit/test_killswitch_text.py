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
    import sys
    import unicodedata

    from cryptosmarttrader.domain.killswitch import REASON_PATTERN

    pattern = re.compile(REASON_PATTERN)

    def refused(chars: str) -> tuple[bool, bool]:
        """(by the pattern, by the check) for ``chars`` between allowed text: each refuses a
        run of characters exactly when it refuses one of them."""
        text = f"abc{chars}x"
        by_pattern = pattern.match(text) is None
        try:
            check_text("reason", text, len(text))
            by_check = False
        except DomainError:
            by_check = True
        return by_pattern, by_check

    mismatched: list[str] = []
    refused_by_check: set[int] = set()

    def compare(first: int, stop: int) -> None:
        # every code point of [first, stop) by one call per run both accept; a run either
        # refuses is halved down to single code points, each compared on its own
        by_pattern, by_check = refused("".join(map(chr, range(first, stop))))
        if not (by_pattern or by_check):
            return
        if stop - first == 1:
            if by_pattern != by_check:
                mismatched.append(hex(first))
            if by_check:
                refused_by_check.add(first)
            return
        middle = (first + stop) // 2
        compare(first, middle)
        compare(middle, stop)

    # blocks of 0x800 tile the code space around the surrogates (refused by the check only)
    for first in [*range(0, 0xD800, 0x800), *range(0xE000, sys.maxunicode + 1, 0x800)]:
        compare(first, first + 0x800)
    assert mismatched == []
    categories = {"Cc", "Cf", "Zl", "Zp"}  # surrogates are Cs
    controls = [
        cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in categories
    ]
    assert controls  # every control/format character of this Python's Unicode is refused
    assert [hex(cp) for cp in controls if cp not in refused_by_check] == []
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
