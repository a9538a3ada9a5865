"""Mask credentials and personal data in log records and error messages (pure, no I/O).

Two layers, applied together by :func:`sanitize`:

* **by key** — a mapping entry whose key names a credential (``apiKey``, ``secret``,
  ``signature``, ``password``, ``Authorization``, ``X-MBX-APIKEY``, ``KC-API-SIGN``,
  ``aws_secret_access_key``, ``X-Amz-Security-Token``...) has its whole value replaced;
* **by pattern** — inside any string: ``key=value`` / ``"key": "value"`` pairs with such keys
  (URL query strings, header dict reprs, JSON bodies quoted in ccxt error messages, also when
  that JSON is itself escaped inside JSON), ``('key', 'value')`` tuples, the password of a
  URL's ``user:password@`` part (any host, any characters), bearer and basic credentials,
  JWTs, AWS access key ids, secret keys (40 base64 characters) and session tokens, long
  base64 secrets such as Kraken's API secret, provider tokens by their prefixes (GitHub
  ``ghp_``/``github_pat_``, Slack ``xox?-``, Stripe ``sk_live_``...), PEM private keys and
  e-mail addresses.

ccxt builds its error messages from the exchange id, the HTTP method, the URL with its query
string (Binance signs GET requests there), the status and the response body
(``handle_http_status_code``), and in verbose mode logs the request headers and body: the
tests replay those exact code paths with real-looking credentials.

Powertools' Logger takes :func:`sanitized_json` as its ``json_serializer``, so every record a
handler writes (message, extra keys, formatted exception) passes through here before it is
printed. Error strings returned to API clients go through :func:`sanitize_text`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "REDACTED",
    "is_sensitive_key",
    "sanitize",
    "sanitize_text",
    "sanitized_json",
]

REDACTED: Final = "[REDACTED]"
REDACTED_EMAIL: Final = "[REDACTED-EMAIL]"
_MAX_DEPTH: Final = 32

# Words that make a key a credential wherever they appear in it (case-insensitive):
# "X-MBX-APIKEY", "KC-API-PASSPHRASE", "aws_secret_access_key", "sessionToken"...
_KEY_WORDS: Final = (
    r"api[-_]?key",
    r"api[-_]?sign",
    r"api[-_]?secret",
    r"secret",
    r"passw(?:or)?d",
    r"passphrase",
    r"token",
    r"signature",
    r"authori[sz]ation",
    r"cookie",
    r"credential",
    r"private[-_]?key",
    r"access[-_]?key",
)
_KEY_BODY: Final = r"[A-Za-z0-9_.-]*(?:" + "|".join(_KEY_WORDS) + r")[A-Za-z0-9_.-]*"
_SENSITIVE_KEY: Final = re.compile(rf"^{_KEY_BODY}$", re.IGNORECASE)
# Whole keys too short to be matched as words inside longer keys ("sign" vs "signal").
_SENSITIVE_EXACT: Final = frozenset({"sign", "sig", "pwd"})

_KEY: Final = rf"(?<![A-Za-z0-9_-]){_KEY_BODY}|(?<![A-Za-z0-9_-])(?:sign|sig|pwd)(?![A-Za-z0-9_-])"
# a quote, possibly escaped once or more (JSON inside JSON): ", \", \\\", '
_Q: Final = r"""(?:\\*["'])"""
_PAIR: Final = re.compile(
    rf"""(?P<key>{_KEY})
         (?P<sep>{_Q}?\s*[:=]\s*{_Q}?)
         (?P<value>(?:(?:Bearer|Basic|Token)\s+)?[^\s"'&,;}})\]\\]+)""",
    re.IGNORECASE | re.VERBOSE,
)
# ('signature', 'abc'), ("X-MBX-APIKEY", "abc"): key/value pairs printed as tuples
_TUPLE: Final = re.compile(
    rf"""(?P<key>(?P<q>["'])(?:{_KEY})(?P=q)\s*,\s*(?P<q2>["']))(?P<value>[^"']*)(?P=q2)""",
    re.IGNORECASE | re.VERBOSE,
)
# scheme://user:password@host — any host (no TLD needed), any character but / @ and space
_URL_USERINFO: Final = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<value>[^\s/@]+)(?=@)"
)
_PROVIDER_TOKEN: Final = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,})"
)
_AWS_SESSION_TOKEN: Final = re.compile(
    r"(?<![A-Za-z0-9+/])(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9+/=]{16,}"
)
# 40 base64 characters with upper, lower and a digit: the shape of an AWS secret access key
_AWS_SECRET: Final = re.compile(
    r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/]{0,39}[a-z])(?=[A-Za-z0-9+/]{0,39}[A-Z])"
    r"(?=[A-Za-z0-9+/]{0,39}[0-9])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=_-])"
)
# 44+ base64 characters with upper, lower and digits, and '+', '/' or '=' padding: a Kraken
# API secret (88 chars), a signature or key in base64 (hex ids and words never match)
_LONG_BASE64: Final = re.compile(
    r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[0-9])"
    r"(?=[A-Za-z0-9+/]*(?:[+/]|[A-Za-z0-9+/]={1,2}(?![A-Za-z0-9+/=])))"
    r"[A-Za-z0-9+/]{43,}={0,2}(?![A-Za-z0-9+/=_-])"
)
_AUTH_SCHEME: Final = re.compile(
    r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE
)
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_AWS_ACCESS_KEY_ID: Final = re.compile(
    r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"
)
_PEM: Final = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)
_EMAIL: Final = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)


def is_sensitive_key(key: str) -> bool:
    """True if a mapping key names a credential (its value is masked whatever it holds)."""
    return key.lower() in _SENSITIVE_EXACT or _SENSITIVE_KEY.match(key) is not None


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == REDACTED or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{REDACTED}"


def sanitize_text(text: str) -> str:
    """``text`` with every credential-looking value and e-mail address masked."""
    out = _PEM.sub(REDACTED, text)
    out = _JWT.sub(REDACTED, out)
    out = _URL_USERINFO.sub(lambda m: f"{m.group('head')}{REDACTED}", out)
    out = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {REDACTED}", out)
    out = _TUPLE.sub(lambda m: f"{m.group('key')}{REDACTED}{m.group('q2')}", out)
    out = _PAIR.sub(_mask_pair, out)
    out = _PROVIDER_TOKEN.sub(REDACTED, out)
    out = _AWS_SESSION_TOKEN.sub(REDACTED, out)
    out = _AWS_ACCESS_KEY_ID.sub(REDACTED, out)
    out = _LONG_BASE64.sub(REDACTED, out)
    out = _AWS_SECRET.sub(REDACTED, out)
    return _EMAIL.sub(REDACTED_EMAIL, out)


def sanitize(value: object, _depth: int = 0) -> object:
    """A copy of ``value`` (mappings, sequences, strings) with credentials masked.

    Non-string scalars pass through unchanged; other objects are rendered with ``str`` and
    sanitized, since that is how a log serializer would print them.
    """
    if _depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return sanitize_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # the printed record stays strict JSON (no NaN / Infinity tokens)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if is_sensitive_key(str(k)) else sanitize(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple) and _is_pair(value):
        return [value[0], REDACTED]  # ("X-MBX-APIKEY", "...") as headers/params lists give it
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(v, _depth + 1) for v in value]
    return sanitize_text(str(value))


def _is_pair(value: list[object] | tuple[object, ...]) -> bool:
    return len(value) == 2 and isinstance(value[0], str) and is_sensitive_key(value[0])


def sanitized_json(record: Mapping[str, object]) -> str:
    """Compact strict JSON of a sanitized log record (the Powertools Logger
    ``json_serializer``); a non-finite number is written as null."""
    return json.dumps(
        sanitize(record), separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False
    )
