"""Serve ccxt's Binance spot *sandbox* from a local fake exchange (development tooling only).

The product builds its real-order client itself (``adapters/ccxt_venue.ccxt_client``: keys from
Secrets Manager or the CLI's key file, ``set_sandbox_mode(True)`` for ``testnet``) and has no
setting that points it anywhere else. A test that drives the deployed execution function or
``cst execute --venue testnet`` end to end against ``cst_devtools.fake_binance`` enters
:func:`binance_sandbox_served_by`: while it holds, every ``ccxt.binance`` client that switches
to sandbox mode has the host of its spot REST URLs (``testnet.binance.vision``) replaced by the
fake's ``http://127.0.0.1:PORT``, paths unchanged, and every request any ``ccxt.binance`` client
makes is checked to go to the loopback interface: a client that was not switched to the sandbox
(a ``live`` one) fails loudly with :class:`LeftLoopbackError` instead of reaching the internet.

:meth:`SandboxRedirect.crash_after_next` is the crash between send and record: the next request
matching it reaches the fake (the venue books the order), then the process "dies" with
:class:`ProcessKilled` (a ``BaseException``, as the Lambda runtime's kill: no ``except Exception``
in the product records anything after it).

Nothing here is importable by the runtime layers (import-linter forbids ``cst_devtools`` there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlparse

import ccxt

__all__ = [
    "LeftLoopbackError",
    "ProcessKilled",
    "SandboxRedirect",
    "binance_sandbox_served_by",
]

_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_SPOT_PATHS: Final = ("/api/", "/sapi/")
_LIVE_HOST: Final = "api.binance.com"


class LeftLoopbackError(BaseException):
    """A ccxt client tried to reach a host other than the loopback interface."""


class ProcessKilled(BaseException):
    """The process died here (the runtime's kill after a timeout, an OOM, a host failure)."""


@dataclass
class SandboxRedirect:
    """What the redirect saw: the sandbox URL each client had before it was pointed at the
    fake (``sandbox_hosts``) and each request (method, URL path) ccxt sent."""

    base_url: str
    sandbox_hosts: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    _crashes: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def crash_after_next(self, method: str, path: str) -> None:
        """The next ``method path`` request is answered by the fake, then the process dies."""
        with self._lock:
            self._crashes.append((method.upper(), path))

    def _take_crash(self, method: str, path: str) -> bool:
        with self._lock:
            if (method, path) in self._crashes:
                self._crashes.remove((method, path))
                return True
        return False

    def point(self, client: ccxt.Exchange) -> None:
        """Replace the host of the client's spot REST URLs by the fake's; drop the others."""
        api = client.urls["api"]
        self.sandbox_hosts.append(str(urlparse(str(api.get("private", ""))).hostname))
        rewritten: dict[str, str] = {}
        for name, url in api.items():
            parsed = urlparse(str(url))
            if parsed.path.startswith(_SPOT_PATHS):
                rewritten[name] = self.base_url.rstrip("/") + parsed.path
        client.urls["api"] = rewritten


@contextmanager
def binance_sandbox_served_by(base_url: str, *, live: bool = False) -> Iterator[SandboxRedirect]:
    """While it holds, Binance sandbox clients talk to ``base_url`` (a loopback address) and
    no ``ccxt.binance`` client reaches any other host (see the module docstring). ``live``:
    requests to the production spot API (``api.binance.com``, ``/api/`` and ``/sapi/`` paths)
    are served by ``base_url`` too, so a ``live`` client is driven against the fake."""
    if urlparse(base_url).hostname not in _LOOPBACK:
        raise ValueError(f"the fake exchange must be served on loopback, got {base_url!r}")
    redirect = SandboxRedirect(base_url)
    cls: Any = ccxt.binance
    original_sandbox = cls.__dict__["set_sandbox_mode"]
    had_fetch = "fetch" in cls.__dict__
    original_fetch = cls.fetch

    def set_sandbox_mode(self: ccxt.Exchange, enable: bool) -> None:
        original_sandbox(self, enable)
        if enable:
            redirect.point(self)

    def fetch(
        self: ccxt.Exchange, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        parsed = urlparse(url)
        if live and parsed.hostname == _LIVE_HOST and parsed.path.startswith(_SPOT_PATHS):
            url = redirect.base_url.rstrip("/") + url[url.index(parsed.path) :]
            parsed = urlparse(url)
        if parsed.hostname not in _LOOPBACK:
            raise LeftLoopbackError(f"ccxt tried to reach {parsed.scheme}://{parsed.hostname}")
        redirect.sent.append((method.upper(), parsed.path))
        answer = original_fetch(self, url, method, headers, body)
        if redirect._take_crash(method.upper(), parsed.path):
            raise ProcessKilled(f"killed after {method.upper()} {parsed.path} was answered")
        return answer

    cls.set_sandbox_mode = set_sandbox_mode
    cls.fetch = fetch
    try:
        yield redirect
    finally:
        cls.set_sandbox_mode = original_sandbox
        if had_fetch:
            cls.fetch = original_fetch
        else:
            del cls.fetch
