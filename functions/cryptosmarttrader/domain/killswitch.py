"""What a kill-switch value may say: printable reason and actor text, and a size SSM can store.

The switch is an SSM String parameter holding ``{"actor", "at", "on", "reason"}`` as JSON. Two
rules apply to every writer (the CLI, the API, the alarm function, the RiskGuard, go-live):

* **no control or formatting characters** in the reason or the actor: an ANSI escape
  (``ESC[``), a carriage return or a bidirectional override (U+202E) would let a stored reason
  rewrite what a terminal shows — e.g. make ``kill-switch: off`` read as ``ON``. Refused: the
  code points of Unicode 15.0's categories Cc (controls: ESC, CR, LF, TAB, DEL, C1...), Cf
  (format: bidi overrides and isolates, zero-width characters, soft hyphen...), Zl and Zp
  (line and paragraph separators) — listed in :data:`REFUSED_RANGES`, so the check and the
  API's published pattern (:data:`REASON_PATTERN`) agree on every Python — and lone surrogates.
  The character and its position are named. Plain spaces are fine.
* **the encoded value fits SSM's standard tier** (4096 bytes). The JSON is written as UTF-8
  (non-ASCII kept, at most 4 bytes a character), so a reason of at most 500 characters always
  fits beside a normal actor; :func:`encoded_value` measures the real bytes and refuses the rest.

Writers that must never fail on text they did not choose (the alarm function quoting
CloudWatch's reason, the go-live rollback quoting a failure) use :func:`writable_reason`, which
replaces what :func:`check_text` refuses and truncates.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "MAX_ACTOR_CHARS",
    "MAX_REASON_CHARS",
    "MAX_VALUE_BYTES",
    "REASON_PATTERN",
    "REFUSED_RANGES",
    "RUN_ID_PATTERN",
    "SYSTEM_ACTOR_PREFIX",
    "check_reason",
    "check_text",
    "encoded_value",
    "escape_controls",
    "printable",
    "writable_reason",
]

MAX_VALUE_BYTES: Final = 4096  # SSM standard-tier parameter value
MAX_REASON_CHARS: Final = 500
MAX_ACTOR_CHARS: Final = 640  # an IAM user ARN with a long path, prefixed "iam:"
# a go-live run id (a Step Functions execution name): the shape of the rollback's marker in the
# value (``golive_rollback``, domain.golive.rollback_engaged)
RUN_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,80}$"
# the actors of the system's own writers (system:golive, system:riskguard, system:fail-closed):
# an operator path refuses an actor that names itself so
SYSTEM_ACTOR_PREFIX: Final = "system:"
# Unicode 15.0 categories Cc, Cf, Zl, Zp (surrogates are refused separately: no regex class can
# hold them), as inclusive code point ranges
REFUSED_RANGES: Final = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
_SURROGATES: Final = (0xD800, 0xDFFF)


def _escape(cp: int) -> str:
    return f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"


_CLASS: Final = "".join(
    _escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in REFUSED_RANGES
)
# 3+ non-blank characters and none refused; unambiguous (linear) for any regex engine:
# blanks, then a non-blank, three times, then anything allowed
_BLANK: Final = f"[^\\S{_CLASS}]*"
_NON_BLANK: Final = f"[^\\s{_CLASS}]"
REASON_PATTERN: Final = (
    f"^{_BLANK}{_NON_BLANK}{_BLANK}{_NON_BLANK}{_BLANK}{_NON_BLANK}[^{_CLASS}]*$"
)


# every refused code point (~2,300), so a check costs one set lookup per character
_REFUSED_CODE_POINTS: Final = frozenset(
    cp for a, b in (*REFUSED_RANGES, _SURROGATES) for cp in range(a, b + 1)
)


def _refused(char: str) -> bool:
    return ord(char) in _REFUSED_CODE_POINTS


def check_text(field: str, value: str, max_chars: int) -> str:
    """``value`` stripped of surrounding whitespace, or :class:`DomainError` saying what is
    wrong: empty, longer than ``max_chars``, or holding a control/format character (named, with
    its 1-based position in the stripped text)."""
    text = value.strip()
    for position, char in enumerate(text, start=1):
        if _refused(char):
            name = unicodedata.name(char, "control character")
            raise DomainError(
                f"{field} contains U+{ord(char):04X} ({name}) at position {position}: control "
                "and formatting characters are not allowed (they can change what a terminal "
                "shows)"
            )
    if not text:
        raise DomainError(f"{field} must not be empty")
    if len(text) > max_chars:
        raise DomainError(f"{field} is {len(text)} characters long; at most {max_chars} allowed")
    return text


def check_reason(value: str, field: str = "reason") -> str:
    """:func:`check_text` for a reason (at most :data:`MAX_REASON_CHARS`): what every entry
    point (CLI, API model) checks before writing. 500 characters take at most 2 KB once encoded,
    so a checked reason always fits the value beside an actor of normal size."""
    return check_text(field, value, MAX_REASON_CHARS)


def printable(value: str, max_chars: int) -> str:
    """``value`` with every refused character replaced by a space, runs of spaces collapsed,
    truncated to ``max_chars`` (for text a writer quotes but did not choose)."""
    cleaned = "".join(" " if _refused(c) else c for c in value)
    return " ".join(cleaned.split())[:max_chars]


def writable_reason(value: str, fallback: str) -> str:
    """A reason a system writer (RiskGuard, go-live rollback, alarm) can always store: text it
    quotes but did not choose, made :func:`printable` within :data:`MAX_REASON_CHARS`;
    ``fallback`` if nothing printable is left. A stop must never fail on its own wording."""
    text = printable(value, MAX_REASON_CHARS) or printable(fallback, MAX_REASON_CHARS)
    return text or "kill-switch on"


def escape_controls(value: str) -> str:
    """``value`` with every refused character shown as its escape (``\\x1b``, ``\\u202e``),
    for displaying stored text that may not have passed :func:`check_text`."""
    return "".join(c.encode("unicode_escape").decode("ascii") if _refused(c) else c for c in value)


def encoded_value(value: Mapping[str, Any]) -> str:
    """The JSON stored in the parameter (sorted keys, UTF-8), refused with :class:`DomainError`
    when it exceeds :data:`MAX_VALUE_BYTES`."""
    encoded = json.dumps(dict(value), sort_keys=True, ensure_ascii=False)
    size = len(encoded.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise DomainError(
            f"the kill-switch value would be {size} bytes once encoded; SSM stores at most "
            f"{MAX_VALUE_BYTES}: shorten the reason or the actor"
        )
    return encoded
