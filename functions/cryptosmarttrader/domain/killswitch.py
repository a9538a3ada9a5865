"""What a kill-switch value may say: printable reason and actor text, and a size SSM can store.

The switch is an SSM String parameter holding ``{"actor", "at", "on", "reason"}`` as JSON. Two
rules apply to every writer (the CLI, the API, the alarm function, the RiskGuard, go-live):

* **no control or formatting characters** in the reason or the actor: an ANSI escape
  (``ESC[``), a carriage return or a bidirectional override (U+202E) would let a stored reason
  rewrite what a terminal shows — e.g. make ``kill-switch: off`` read as ``ON``. Categories
  Cc (controls: ESC, CR, LF, TAB, DEL...), Cf (format: bidi overrides and isolates, zero-width
  joiners, soft hyphen), Zl/Zp (line and paragraph separators) and Cs (lone surrogates) are
  refused with the character and its position named. Plain spaces are fine.
* **the encoded value fits SSM's standard tier** (4096 bytes): the JSON written is ASCII
  (``json.dumps`` escapes non-ASCII as ``\\uXXXX``, up to 12 bytes for one emoji), so a
  500-character reason can exceed the limit; :func:`encoded_value` measures the real bytes.

Writers that must never fail on text they did not choose (the alarm function quoting
CloudWatch's reason) use :func:`printable` instead, which replaces what :func:`check_text`
refuses and truncates to fit.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "MAX_ACTOR_CHARS",
    "MAX_REASON_BYTES",
    "MAX_REASON_CHARS",
    "MAX_VALUE_BYTES",
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
# the reason's share of the value, leaving room for the keys, the time and an ASCII actor
MAX_REASON_BYTES: Final = 3072
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _refused(char: str) -> bool:
    return unicodedata.category(char) in _REFUSED_CATEGORIES


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
    """:func:`check_text` for a reason, plus its JSON-escaped size (at most
    :data:`MAX_REASON_BYTES`): what every entry point (CLI, API model) checks before writing."""
    text = check_text(field, value, MAX_REASON_CHARS)
    size = len(json.dumps(text))
    if size > MAX_REASON_BYTES:
        raise DomainError(
            f"{field} takes {size} bytes once JSON-encoded; at most {MAX_REASON_BYTES} fit the "
            "kill-switch value (non-ASCII characters take up to 12 bytes each)"
        )
    return text


def printable(value: str, max_chars: int) -> str:
    """``value`` with every refused character replaced by a space, runs of spaces collapsed,
    truncated to ``max_chars`` (for text a writer quotes but did not choose)."""
    cleaned = "".join(" " if _refused(c) else c for c in value)
    return " ".join(cleaned.split())[:max_chars]


def writable_reason(value: str, fallback: str) -> str:
    """A reason a system writer (RiskGuard, go-live rollback, alarm) can always store: text it
    quotes but did not choose, made :func:`printable`, within :data:`MAX_REASON_CHARS`, and
    ASCII if its escaped form would not fit :data:`MAX_REASON_BYTES`; ``fallback`` if nothing
    printable is left. A stop must never fail on its own wording."""
    text = printable(value, MAX_REASON_CHARS) or printable(fallback, MAX_REASON_CHARS)
    if len(json.dumps(text)) > MAX_REASON_BYTES:
        text = text.encode("ascii", "replace").decode("ascii")
    return text or "kill-switch on"


def escape_controls(value: str) -> str:
    """``value`` with every refused character shown as its escape (``\\x1b``, ``\\u202e``),
    for displaying stored text that may not have passed :func:`check_text`."""
    return "".join(c.encode("unicode_escape").decode("ascii") if _refused(c) else c for c in value)


def encoded_value(value: Mapping[str, Any]) -> str:
    """The JSON stored in the parameter (sorted keys, ASCII), refused with
    :class:`DomainError` when it exceeds :data:`MAX_VALUE_BYTES`."""
    encoded = json.dumps(dict(value), sort_keys=True)
    size = len(encoded.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise DomainError(
            f"the kill-switch value would be {size} bytes once JSON-encoded; SSM stores at most "
            f"{MAX_VALUE_BYTES}: shorten the reason (non-ASCII characters take up to 12 bytes "
            "each)"
        )
    return encoded
