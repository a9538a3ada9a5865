"""Fault injectors for the chaos suite (`cst chaos run`). Each injects a REAL fault on loopback.

* :class:`LoopbackExchange` — an HTTP server on 127.0.0.1 that serves recorded Binance candles at
  Binance's ``/api/v3/klines`` path to a real ccxt client (its requests transport, its error
  handling), and follows a script of faults per request: TCP resets, hangs past the client
  timeout, 5xx, 429, truncated JSON, invalid candles.
* :class:`DynamoFaults` — botocore event hooks on one client: throttling answers
  (``ProvisionedThroughputExceededException``, HTTP 400) injected at ``before-send`` so the
  SDK's own retry policy handles them, and an endpoint outage (``EndpointConnectionError``)
  injected at ``before-call``: the error the SDK raises once its retries are spent, without
  waiting out its backoff.
* :class:`ExhaustedRetries` — a ``before-call`` hook on any boto3 client: the next N calls of
  one operation (SSM ``GetParameter``/``PutParameter``, DynamoDB ``DeleteItem``...) end with the
  ``ClientError`` the SDK raises once every retry was throttled.
* :func:`run_limited` — runs a ``cst`` command or the scan Lambda handler in a child process
  under ``RLIMIT_AS`` (memory) and/or ``RLIMIT_FSIZE`` (disk: writes past it fail with EFBIG).
* :class:`SsmThrottle` and the venue wrappers :class:`FlakyLookups`, :class:`UnreadableAcks`,
  :class:`LateOrders` — the execution faults: a kill-switch read refused with
  ``ThrottlingException`` (botocore ``before-call`` hook on the cycle's SSM client), venue
  lookups failing during a cancel sweep, acknowledgements that cannot be parsed, orders the
  venue shows only later; the execution bench runs the real hourly cycle on the lab's moto
  server over the recorded bars with the lake's ingest lag (``adapters/lake_timing.py``).

Everything binds or connects to 127.0.0.1 only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlparse

import polars as pl
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.circuit_breaker import BreakerConfig
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import RetryPolicy, capabilities_for
from cryptosmarttrader.domain.market import TIMEFRAME_MS
from cryptosmarttrader.domain.types import ms_from_utc, utc_from_ms
from cryptosmarttrader.services.ingest import (
    WATERMARK_PK,
    IngestConfig,
    IngestReport,
    IngestService,
    series_key,
)
from cryptosmarttrader.services.risk_state import RISK_PK, RiskStateService
from cryptosmarttrader.services.scan import Analysis, ScanAnalyzer, ScanReport, ScanService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.environ import patched_environ
from cst_devtools.loopback_http import SHUTDOWN_POLL_S, answer_without_delay

if TYPE_CHECKING:
    import ccxt

    from cryptosmarttrader.services.execution import ReconcileReport

__all__ = [
    "LOOPBACK",
    "ChildRun",
    "DynamoFaults",
    "ExchangeFault",
    "ExhaustedRetries",
    "LocalChaosLab",
    "LoopbackExchange",
    "binance_client_on",
    "cloudwatch_alarm_event",
    "free_port",
    "run_limited",
]

LOOPBACK: Final = "127.0.0.1"
_MAX_HANG_S: Final = 5.0
_CHILD_TIMEOUT_S: Final = 120.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# Exchange: a loopback HTTP server with a fault script
# --------------------------------------------------------------------------------------------


class ExchangeFault(StrEnum):
    OK = "ok"
    RESET = "reset"  # accept, then close with SO_LINGER 0: the client sees ECONNRESET
    HANG = "hang"  # accept, answer nothing until after the client's timeout
    HTTP_503 = "http_503"
    HTTP_502 = "http_502"
    HTTP_429 = "http_429"
    TRUNCATED = "truncated"  # 200 with a JSON body cut in half
    NEGATIVE_PRICE = "negative_price"  # 200 with one candle's low below zero


@dataclass
class _ServerState:
    candles: list[list[float]]
    script: deque[ExchangeFault] = field(default_factory=deque)
    default: ExchangeFault = ExchangeFault.OK
    hang_seconds: float = 1.0
    served: list[tuple[str, ExchangeFault]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, path: str) -> ExchangeFault:
        with self.lock:
            action = self.script.popleft() if self.script else self.default
            self.served.append((path, action))
            return action


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the state records every request

    def do_GET(self) -> None:
        state = self.server.state
        url = urlparse(self.path)
        action = state.next_action(url.path)
        if action is ExchangeFault.RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if action is ExchangeFault.HANG:
            time.sleep(min(state.hang_seconds, _MAX_HANG_S))
            self.close_connection = True
            return
        if action in {ExchangeFault.HTTP_502, ExchangeFault.HTTP_503}:
            code = 502 if action is ExchangeFault.HTTP_502 else 503
            self._send(code, b"<html><body>Service Unavailable</body></html>", "text/html")
            return
        if action is ExchangeFault.HTTP_429:
            body = b'{"code":-1003,"msg":"Too many requests; current limit is 6000 weight."}'
            self._send(429, body, "application/json", {"Retry-After": "1"})
            return
        if url.path != "/api/v3/klines":
            self._send(404, b'{"code":-1,"msg":"not served by the loopback exchange"}')
            return
        rows = self._klines(parse_qs(url.query), state.candles)
        if action is ExchangeFault.NEGATIVE_PRICE and rows:
            middle = list(rows[len(rows) // 2])
            middle[3] = -abs(float(middle[3]))
            rows[len(rows) // 2] = middle
        body = json.dumps(rows).encode()
        if action is ExchangeFault.TRUNCATED:
            body = body[: max(1, len(body) // 2)]
        self._send(200, body)

    @staticmethod
    def _klines(query: Mapping[str, list[str]], candles: Sequence[list[float]]) -> list[Any]:
        start = int(query.get("startTime", ["0"])[0])
        end = int(query.get("endTime", [str(2**62)])[0])
        limit = int(query.get("limit", ["500"])[0])
        rows = [row for row in candles if start <= int(row[0]) <= end]
        # Binance's kline fields 0-5 (open time, OHLC as strings, volume): what the data records.
        return [[int(r[0]), *(repr(float(v)) for v in r[1:6])] for r in rows[:limit]]

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _ServerState


class LoopbackExchange:
    """Recorded candles served at Binance's klines path on 127.0.0.1, with scripted faults.

    ``candles`` are ``[open_ms, open, high, low, close, volume]`` rows (the recorded data's
    format). Use as a context manager; :attr:`endpoint` is ``http://127.0.0.1:<port>``.
    """

    def __init__(self, candles: Sequence[Sequence[float]], hang_seconds: float = 1.0) -> None:
        if not 0 < hang_seconds <= _MAX_HANG_S:
            raise ValueError(f"hang_seconds must be in (0, {_MAX_HANG_S}], got {hang_seconds}")
        self._state = _ServerState(
            [list(map(float, c)) for c in candles], hang_seconds=hang_seconds
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LoopbackExchange:
        server = _Server((LOOPBACK, 0), _Handler)
        server.state = self._state
        answer_without_delay(server)  # headers and body are two writes: no Nagle stall
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(SHUTDOWN_POLL_S,), name="loopback-exchange"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=_MAX_HANG_S + 1)

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the loopback exchange is not running")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def script(self, *faults: str, then: str = ExchangeFault.OK) -> None:
        """Answer the next requests with ``faults`` in order, then ``then`` for every later one.

        Faults are :class:`ExchangeFault` values (or their names); an unknown one is an error.
        """
        with self._state.lock:
            self._state.script = deque(ExchangeFault(f) for f in faults)
            self._state.default = ExchangeFault(then)

    def heal(self) -> None:
        self.script(then=ExchangeFault.OK)

    @property
    def requests(self) -> int:
        with self._state.lock:
            return len(self._state.served)

    def served(self) -> list[str]:
        """The answer given to every request so far, in order (``ExchangeFault`` values)."""
        with self._state.lock:
            return [action.value for _, action in self._state.served]


def binance_client_on(endpoint: str, timeout_ms: int, symbols: Sequence[str]) -> ccxt.Exchange:
    """A real ccxt Binance client whose every API URL points at ``endpoint`` (loopback only).

    Markets are set from the symbols (id ``BASEQUOTE``): a spot kline request needs nothing else,
    and ``load_markets`` then makes no request of its own.
    """
    if not endpoint.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"the chaos exchange must be on {LOOPBACK}, got {endpoint}")
    import ccxt

    client: ccxt.Exchange = ccxt.binance({"enableRateLimit": True, "timeout": timeout_ms})
    client.rateLimit = 0
    api: dict[str, str] = client.urls["api"]
    for key, url in list(api.items()):
        parsed = urlparse(url)
        api[key] = f"{endpoint}{parsed.path}"
    markets = []
    for symbol in symbols:
        base, quote = symbol.split("/")
        markets.append(
            {
                "id": f"{base}{quote}",
                "symbol": symbol,
                "base": base,
                "quote": quote,
                "baseId": base,
                "quoteId": quote,
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "contract": False,
                "active": True,
            }
        )
    client.set_markets(markets)
    return client


# --------------------------------------------------------------------------------------------
# DynamoDB: botocore event hooks
# --------------------------------------------------------------------------------------------


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: object) -> Iterator[bytes]:
        yield self._body


@dataclass
class DynamoFaults:
    """Faults on one boto3 DynamoDB client, through its event system (no patching).

    Timestamps (``time.monotonic``) record when the first fault hit, when the last one hit and
    the first successful call after it, so a scenario can measure its recovery.
    """

    client: Any
    monotonic: Callable[[], float] = time.monotonic
    throttles_left: int = 0
    throttled: int = 0
    outage_active: bool = False
    outage_trigger: tuple[str, str] | None = None
    refused: int = 0
    attempts: int = 0
    first_fault_at: float | None = None
    last_fault_at: float | None = None
    recovered_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb", self._before_build)
        events.register("before-call.dynamodb", self._before_call)
        events.register("before-send.dynamodb", self._before_send)
        events.register("after-call.dynamodb", self._after_call)

    def detach(self) -> None:
        events = self.client.meta.events
        events.unregister("before-parameter-build.dynamodb", self._before_build)
        events.unregister("before-call.dynamodb", self._before_call)
        events.unregister("before-send.dynamodb", self._before_send)
        events.unregister("after-call.dynamodb", self._after_call)

    # -- controls ------------------------------------------------------------------------------

    def throttle(self, sends: int) -> None:
        """Answer the next ``sends`` HTTP sends with ProvisionedThroughputExceededException."""
        if sends < 0:
            raise ValueError("sends must be >= 0")
        with self._lock:
            self.throttles_left = sends

    def start_outage(self) -> None:
        """Every call fails with EndpointConnectionError until :meth:`end_outage`."""
        with self._lock:
            self.outage_active = True

    def outage_from(self, operation: str, table: str) -> None:
        """Start the outage at the first ``operation`` on ``table`` (that call fails too)."""
        with self._lock:
            self.outage_trigger = (operation, table)

    def end_outage(self) -> None:
        with self._lock:
            self.outage_active = False
            self.outage_trigger = None

    def recovery_seconds(self) -> float | None:
        if self.first_fault_at is None or self.recovered_at is None:
            return None
        return round(self.recovered_at - self.first_fault_at, 3)

    # -- hooks -----------------------------------------------------------------------------------

    def _fault(self) -> None:
        now = self.monotonic()
        if self.first_fault_at is None:
            self.first_fault_at = now
        self.last_fault_at = now
        self.recovered_at = None

    def _before_build(self, params: Mapping[str, Any], model: Any, **_kwargs: object) -> None:
        with self._lock:
            trigger = self.outage_trigger
            if trigger == (model.name, params.get("TableName")):
                self.outage_active, self.outage_trigger = True, None

    def _before_call(self, **_kwargs: object) -> None:
        with self._lock:
            if not self.outage_active:
                return
            self.refused += 1
            self._fault()
        endpoint = self.client.meta.endpoint_url
        raise EndpointConnectionError(endpoint_url=endpoint)

    def _before_send(self, request: Any, **_kwargs: object) -> AWSResponse | None:
        with self._lock:
            self.attempts += 1
            if self.throttles_left <= 0:
                return None
            self.throttles_left -= 1
            self.throttled += 1
            self._fault()
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was "
                "exceeded (injected by the chaos suite)",
            }
        ).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = "chaos"
        return AWSResponse(request.url, 400, headers, _RawBody(body))

    def _after_call(self, http_response: Any, **_kwargs: object) -> None:
        if http_response is None or http_response.status_code >= 300:
            return
        with self._lock:
            if self.last_fault_at is not None and self.recovered_at is None:
                self.recovered_at = self.monotonic()


@dataclass
class ExhaustedRetries:
    """Calls of one boto3 client end as they end once the SDK's retries are spent.

    A ``before-call`` hook answers the next ``calls`` invocations of ``operation`` with the
    error response botocore turns into the same ``ClientError`` (code, message, HTTP 400,
    ``MaxAttemptsReached``) as a throttled call that exhausted its retries — without waiting out
    the adaptive backoff (~15 s per call). Any other operation, and later calls, go through.
    """

    client: Any
    code: str = "ThrottlingException"
    message: str = "Rate exceeded (injected: every retry throttled)"
    injected: dict[str, int] = field(default_factory=dict)
    _left: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._event = f"before-call.{self.client.meta.service_model.service_id.hyphenize()}"
        self.client.meta.events.register(self._event, self._before_call)

    def exhaust(self, operation: str, calls: int = 1) -> None:
        """Fail the next ``calls`` calls of ``operation`` (e.g. ``"PutParameter"``)."""
        if calls < 0:
            raise ValueError("calls must be >= 0")
        with self._lock:
            self._left[operation] = calls

    def heal(self) -> None:
        with self._lock:
            self._left.clear()

    def detach(self) -> None:
        self.client.meta.events.unregister(self._event, self._before_call)

    def _before_call(
        self, model: Any, **_kwargs: object
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        with self._lock:
            if self._left.get(model.name, 0) <= 0:
                return None
            self._left[model.name] -= 1
            self.injected[model.name] = self.injected.get(model.name, 0) + 1
        headers = HTTPHeaders()
        headers["x-amzn-RequestId"] = "chaos"
        response = AWSResponse(self.client.meta.endpoint_url, 400, headers, _RawBody(b""))
        parsed = {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {
                "HTTPStatusCode": 400,
                "MaxAttemptsReached": True,
                "RetryAttempts": 4,
                "RequestId": "chaos",
            },
        }
        return response, parsed


# --------------------------------------------------------------------------------------------
# Resource-limited child processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """How a limited child process ended."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def peak_kib(self) -> dict[str, int]:
        """``VmPeak`` (address space) and ``VmHWM`` (resident) the child reported, if it could."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith(PEAK_PREFIX):
                data: dict[str, int] = json.loads(line.removeprefix(PEAK_PREFIX))
                return data
        return {}

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        return signal.Signals(-self.returncode).name

    def outcome(self) -> str:
        if self.ok:
            return "completed"
        if self.signal_name:
            return f"killed by {self.signal_name}"
        last = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return f"exit {self.returncode}: {last[-1] if last else 'no message'}"


# Keep a child's virtual address space near its real use (RLIMIT_AS counts reservations, a
# Lambda's limit counts resident memory): few allocator arenas, jemalloc (polars) returning
# unused pages, no background allocator threads, single-threaded BLAS.
_LEAN_ENV: Final = {
    "POLARS_MAX_THREADS": "2",
    "RAYON_NUM_THREADS": "2",
    "MALLOC_ARENA_MAX": "2",
    "_RJEM_MALLOC_CONF": "background_thread:false,narenas:1,retain:false,dirty_decay_ms:0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def run_limited(
    target: Sequence[str],
    *,
    env: Mapping[str, str],
    unset: Sequence[str] = (),
    memory_mb: int | None = None,
    file_size_bytes: int | None = None,
    timeout_s: float = _CHILD_TIMEOUT_S,
    cwd: Path | None = None,
) -> ChildRun:
    """Run ``target`` (``["cst", ...args]`` or ``["scan-handler", event_json]``) in a child.

    The child applies the limits to itself before importing anything else, so imports count
    against the memory cap as they do in a Lambda sandbox.
    """
    if not target or target[0] not in {"cst", "scan-handler"}:
        raise ValueError(f"unknown child target {target!r}")
    limits = {"memory_mb": memory_mb, "file_size_bytes": file_size_bytes}
    argv = (sys.executable, "-m", __name__, json.dumps(limits), *target)
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - our interpreter and module, fixed arguments
        argv,
        env={
            **{k: v for k, v in os.environ.items() if k not in set(unset)},
            **_LEAN_ENV,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd,
        check=False,
    )
    return ChildRun(
        argv=argv,
        returncode=proc.returncode,
        seconds=round(time.monotonic() - started, 3),
        stdout=proc.stdout,
        stderr=proc.stderr,
    )


@dataclass
class _ChildContext:
    function_name: str = "cst-scan"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:cst-scan"
    aws_request_id: str = "chaos-child"


def _apply_limits(limits: Mapping[str, int | None]) -> None:
    memory_mb = limits.get("memory_mb")
    if memory_mb is not None:
        cap = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    size = limits.get("file_size_bytes")
    if size is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


PEAK_PREFIX: Final = "chaos-child-peak "


def _report_peak() -> None:
    """One stderr line with the child's peak address space and resident set (KiB)."""
    with contextlib.suppress(OSError):
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        peak = {k: int(fields[k].split()[0]) for k in ("VmPeak", "VmHWM") if k in fields}
        sys.stderr.write(PEAK_PREFIX + json.dumps(peak) + "\n")


def _child_main(argv: Sequence[str]) -> int:
    _apply_limits(json.loads(argv[0]))
    target, args = argv[1], list(argv[2:])
    try:
        if target == "cst":
            # the installed `cst` command, found as a user's shell finds it: by its entry point
            # (this package never imports the CLI, which imports it)
            found = entry_points(group="console_scripts", name="cst")
            if not found:
                raise SystemExit("the `cst` command is not installed: run `uv sync` first")
            app = next(iter(found)).load()
            code = app(args=args, prog_name="cst", standalone_mode=False)
            return code if isinstance(code, int) else 0
        from cryptosmarttrader.handlers import scan as scan_handler

        result = scan_handler.handler(json.loads(args[0]), _ChildContext())
        print(json.dumps(result, default=str))
        return 0 if result.get("status") == "ok" else 1
    finally:
        _report_peak()


# --------------------------------------------------------------------------------------------
# The lab: local AWS (a moto server on loopback) and the benches the chaos scenarios run on
# --------------------------------------------------------------------------------------------

CHAOS_SYMBOL: Final = "BTC/USDT"
CHAOS_TIMEFRAME: Final = "1h"
# the execution faults replay a day whose scan rates several tradable coins BUY
EXECUTION_ASOF: Final = datetime(2021, 1, 5, tzinfo=UTC)
_SERVED_BARS: Final = 400
_FIRST_WINDOW_END: Final = 250
_INITIAL_LOOKBACK: Final = 100
_CLIENT_TIMEOUT_MS: Final = 300
_HANG_S: Final = 0.6


@contextlib.contextmanager
def _dummy_credentials() -> Iterator[None]:
    """Credentials for the loopback moto server only; the previous environment is restored."""
    from cst_devtools.local_aws import DUMMY_CREDENTIALS

    with patched_environ(DUMMY_CREDENTIALS, unset=("AWS_ENDPOINT_URL",)):
        yield


@dataclass
class _ScanBench:
    resources: AwsResources
    analyzer: ScanAnalyzer
    data_dir: Path
    clients: AwsClients

    @property
    def orders_table(self) -> str:
        return self.resources.orders_table

    def service(self) -> tuple[ScanService, DynamoFaults]:
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
        from cryptosmarttrader.wiring import scan_service

        clients = AwsClients.build(self.resources)
        faults = DynamoFaults(clients.dynamodb)
        return scan_service(self.analyzer, clients, self.resources, InMemoryMetrics()), faults

    def _keys(self, table: str, key: str) -> list[str]:
        pages = self.clients.dynamodb.get_paginator("scan").paginate(
            TableName=table, ConsistentRead=True
        )
        return sorted(item[key]["S"] for page in pages for item in page["Items"])

    def order_ids(self) -> list[str]:
        return self._keys(self.resources.orders_table, "client_order_id")

    def run_handler(self, event: Mapping[str, Any], memory_mb: int) -> ChildRun:
        from cst_devtools.local_aws import DUMMY_CREDENTIALS

        res = self.resources
        env = {
            **DUMMY_CREDENTIALS,
            "AWS_REGION": res.region,
            "AWS_DEFAULT_REGION": res.region,
            "AWS_ENDPOINT_URL": res.aws_endpoint_url or "",
            "CST_LAKE_BUCKET": res.lake_bucket,
            "CST_ORDERS_TABLE": res.orders_table,
            "CST_POSITIONS_TABLE": res.positions_table,
            "CST_STATE_TABLE": res.state_table,
            "CST_KILL_SWITCH_PARAM": res.kill_switch_param,
            "CST_DATA_SOURCE": "recorded",
            "CST_DATA_DIR": str(self.data_dir),
            # no promoted model here: the lab's decisions are the technical agent's, ordered by
            # the deployment's explicit technical-only opt-in
            "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
            "POWERTOOLS_SERVICE_NAME": "cst-scan",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        return run_limited(["scan-handler", json.dumps(dict(event))], env=env, memory_mb=memory_mb)


@dataclass
class _IngestBench:
    exchange: LoopbackExchange
    lake_store: S3ParquetLake
    state: DynamoStateStore
    clock: FixedClock
    served: pl.DataFrame
    first_since_ms: int
    exchange_id: str = "binance"
    timeframe: str = CHAOS_TIMEFRAME
    symbol: str = CHAOS_SYMBOL
    breaker_cooldown: timedelta = timedelta(seconds=60)

    def service(self) -> IngestService:
        from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics

        client = binance_client_on(self.exchange.endpoint, _CLIENT_TIMEOUT_MS, [self.symbol])
        source = CcxtExchange(
            client,
            capabilities_for(self.exchange_id),
            self.clock,
            RetryPolicy(max_attempts=4, base_delay_s=0.05, max_delay_s=0.2, max_total_s=3.0),
        )
        return IngestService(
            source=source,
            lake=self.lake_store,
            state=self.state,
            metrics=InMemoryMetrics(),
            clock=self.clock,
            config=IngestConfig(
                initial_lookback_bars=_INITIAL_LOOKBACK,
                breaker=BreakerConfig(
                    failure_threshold=3, cooldown_seconds=int(self.breaker_cooldown.total_seconds())
                ),
            ),
        )

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def lake(self) -> pl.DataFrame:
        first, last = int(self.served["ts"][0]), int(self.served["ts"][-1])  # sorted by ts
        return self.lake_store.read_candles(
            self.exchange_id, self.timeframe, self.symbol, utc_from_ms(first), utc_from_ms(last)
        )

    def expected(self) -> pl.DataFrame:
        closed_until = ms_from_utc(self.clock.now()) - TIMEFRAME_MS[self.timeframe]
        return self.served.filter(pl.col("ts").is_between(self.first_since_ms, closed_until))

    def watermark(self) -> int | None:
        stored = self.state.get(
            WATERMARK_PK, series_key(self.exchange_id, self.timeframe, self.symbol)
        )
        return None if stored is None else int(stored["last_ts"])


@dataclass(frozen=True)
class _Snapshot:
    valid: bool
    digest: str | None
    order_ids: list[str]
    size: int


@dataclass
class _DiskBench:
    state_dir: Path
    data_dir: Path

    def cst_scan(self, asof: str, top: int, file_size_bytes: int | None = None) -> ChildRun:
        tmp = self.state_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        argv = [
            "cst",
            "scan",
            "--asof",
            asof,
            "--top",
            str(top),
            "--json",
            "--state-dir",
            str(self.state_dir),
        ]
        return run_limited(
            argv,
            env={"CST_DATA_DIR": str(self.data_dir), "TMPDIR": str(tmp)},
            unset=("AWS_ENDPOINT_URL",),
            file_size_bytes=file_size_bytes,
        )

    def snapshot(self) -> _Snapshot:
        from cst_devtools.local_aws import SNAPSHOT_FILE, SnapshotError, read_snapshot

        path = self.state_dir / SNAPSHOT_FILE
        if not path.exists():
            return _Snapshot(False, None, [], 0)
        body = path.read_bytes()
        try:
            data = read_snapshot(path)
        except SnapshotError:
            return _Snapshot(False, hashlib.sha256(body).hexdigest(), [], len(body))
        orders_table = AwsResources().orders_table
        items = (data or {}).get("tables", {}).get(orders_table, [])
        ids = sorted(str(item["client_order_id"]["S"]) for item in items)
        return _Snapshot(True, hashlib.sha256(body).hexdigest(), ids, len(body))

    def stray_files(self) -> list[str]:
        return sorted(p.name for p in self.state_dir.glob(".*.tmp"))


def cloudwatch_alarm_event(alarm_name: str, reason: str, at: datetime) -> dict[str, Any]:
    """The event CloudWatch sends a Lambda alarm action (single-metric alarm) on OK → ALARM."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}",
        "accountId": "123456789012",
        "time": stamp,
        "region": "us-east-1",
        "alarmData": {
            "alarmName": alarm_name,
            "state": {"value": "ALARM", "reason": reason, "timestamp": stamp},
            "previousState": {"value": "OK", "reason": "Threshold not crossed", "timestamp": stamp},
            "configuration": {"description": "[critical] chaos suite", "metrics": []},
        },
    }


@dataclass
class _LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chaos"


@dataclass
class _SafetyBench:
    """The kill-switch and the risk state of fresh resources on the lab's moto server, reached
    through the code the functions run: the alarm function's real handler (its own cached
    clients, faults injected on them) and the execution function's ``RiskStateService`` over
    ``DynamoStateStore`` + ``SsmKillSwitch`` with clients built like the function's."""

    resources: AwsResources
    clients: AwsClients
    clock: FixedClock
    alarms: int = 0

    def switch(self) -> dict[str, Any]:
        raw = self.clients.ssm.get_parameter(Name=self.resources.kill_switch_param)
        value: dict[str, Any] = json.loads(raw["Parameter"]["Value"])
        return value

    def deliver_alarm(self, exhaust: str | None = None) -> dict[str, Any]:
        """CloudWatch's Lambda alarm action to the alarm function, in-process with this bench's
        resources; ``exhaust``: an SSM operation that fails through every retry, once, on the
        function's own client. Raises what the handler raises (Lambda would retry it)."""
        res = self.resources
        env = {
            "AWS_ENDPOINT_URL": res.aws_endpoint_url or "",
            "AWS_REGION": res.region,
            "AWS_DEFAULT_REGION": res.region,
            "CST_STATE_TABLE": res.state_table,
            "CST_KILL_SWITCH_PARAM": res.kill_switch_param,
            "POWERTOOLS_SERVICE_NAME": "cst-alarm-killswitch",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        self.alarms += 1
        event = cloudwatch_alarm_event(
            "CryptoSmartTrader-critical-Drawdown", "chaos: drawdown above 10%", self.clock.now()
        )
        context = _LambdaContext("cst-alarm-killswitch", f"chaos-alarm-{self.alarms}")

        with patched_environ(env), contextlib.redirect_stdout(io.StringIO()):
            # imported here: a first import creates its logger quiet, on the captured stream
            from cryptosmarttrader.handlers import alarm_killswitch

            reset = alarm_killswitch.reset_caches
            reset()  # a new execution environment: clients and settings from this environment
            faults = ExhaustedRetries(alarm_killswitch._ssm())
            if exhaust:
                faults.exhaust(exhaust, 1)
            try:
                result: dict[str, Any] = alarm_killswitch.handler(event, context)
                return result
            finally:
                faults.detach()
                reset()

    def risk(self, exhaust: str | None = None) -> RiskStateService:
        """The execution function's risk state service (a new execution environment);
        ``exhaust``: an SSM operation that fails through every retry, once."""
        clients = AwsClients.build(self.resources)
        faults = ExhaustedRetries(clients.ssm)
        if exhaust:
            faults.exhaust(exhaust, 1)
        switch = SsmKillSwitch(self.resources.kill_switch_param, clients.ssm, self.clock)
        store = DynamoStateStore(self.resources.state_table, clients.dynamodb)
        return RiskStateService(store, switch, self.clock)

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def delete_risk_state(self) -> None:
        self.clients.dynamodb.delete_item(
            TableName=self.resources.state_table,
            Key={"pk": {"S": RISK_PK}, "sk": {"S": "current"}},
        )


@dataclass
class _InputBench:
    """The `input` scenario's bench: a data dir of links to the real recorded files, where a
    damaged file is a real copy with the damage, and the scan / ingest over it on fresh
    resources of the lab's moto server."""

    data_dir: Path
    resources: AwsResources
    clients: AwsClients
    analyzer: ScanAnalyzer

    @classmethod
    def linked(
        cls,
        source: Path,
        dest: Path,
        resources: AwsResources,
        clients: AwsClients,
        analyzer: ScanAnalyzer,
    ) -> _InputBench:
        if dest.exists():
            shutil.rmtree(dest)
        coins = dest / "coingecko_daily" / "coins"
        coins.mkdir(parents=True)
        (dest / "coingecko_daily" / "coins_metadata.json").symlink_to(
            source / "coingecko_daily" / "coins_metadata.json"
        )
        for path in sorted((source / "coingecko_daily" / "coins").glob("*.csv")):
            (coins / path.name).symlink_to(path)
        for folder in sorted((source / "binance_spot").iterdir()):
            (dest / "binance_spot" / folder.name).mkdir(parents=True)
            for path in sorted(folder.glob("*.json")):
                (dest / "binance_spot" / folder.name / path.name).symlink_to(path)
        return cls(dest, resources, clients, analyzer)

    def _own_copy(self, path: Path) -> bytes:
        raw = path.read_bytes()
        path.unlink()  # the link, never the shared file
        return raw

    def damage_price(self, coin: str, day_ms: int, value: float) -> None:
        path = self.data_dir / "coingecko_daily" / "coins" / f"{coin}.csv"
        frame = pl.read_csv(self._own_copy(path))
        if day_ms not in frame["timestamp"].to_list():
            raise RuntimeError(f"{coin} has no recorded row at {day_ms}")
        frame.with_columns(
            price=pl.when(pl.col("timestamp") == day_ms).then(value).otherwise(pl.col("price"))
        ).write_csv(path)

    def damage_candles(self, pair: str, timeframe: str, fault: str, at_ms: int) -> None:
        base = pair.split("/", 1)[0]
        path = self.data_dir / "binance_spot" / timeframe / f"{base}_USDT-{timeframe}.json"
        rows: list[list[float | None]] = json.loads(self._own_copy(path))
        if fault == "empty":
            rows = []
        elif fault == "off_grid":
            rows = [[float(r[0] or 0) + 30 * 60_000, *r[1:]] for r in rows]
        elif fault == "nan_close":
            last = max(
                i for i, r in enumerate(rows) if float(r[0] or 0) + TIMEFRAME_MS[timeframe] <= at_ms
            )
            rows[last][4] = None
        else:
            raise ValueError(f"unknown candle fault {fault!r}")
        path.write_text(json.dumps(rows))

    def scan(self, asof: str, top_n: int) -> ScanReport:
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
        from cryptosmarttrader.wiring import recorded_analyzer, scan_service

        analyzer = recorded_analyzer(self.data_dir, self.analyzer.clock, self.analyzer.settings)
        day = datetime.strptime(asof, "%Y-%m-%d").replace(tzinfo=UTC)
        service = scan_service(analyzer, self.clients, self.resources, InMemoryMetrics())
        return service.run(day, top_n)

    def order_ids(self) -> list[str]:
        pages = self.clients.dynamodb.get_paginator("scan").paginate(
            TableName=self.resources.orders_table, ConsistentRead=True
        )
        return sorted(item["client_order_id"]["S"] for page in pages for item in page["Items"])

    def _lake(self) -> S3ParquetLake:
        return S3ParquetLake(self.resources.lake_bucket, self.clients.s3)

    def ingest(self, pairs: Sequence[str], timeframe: str, at_ms: int) -> IngestReport:
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
        from cryptosmarttrader.services.ingest import MarketDataReplaySource

        service = IngestService(
            source=MarketDataReplaySource(RecordedMarketData(self.data_dir)),
            lake=self._lake(),
            state=DynamoStateStore(self.resources.state_table, self.clients.dynamodb),
            metrics=InMemoryMetrics(),
            clock=FixedClock(utc_from_ms(at_ms)),
            config=IngestConfig(initial_lookback_bars=_INPUT_LOOKBACK),
        )
        return service.run("binance", timeframe, list(pairs))

    def lake_days(self, pair: str, timeframe: str) -> int:
        return len(self._lake().days("binance", timeframe, pair))


_INPUT_LOOKBACK: Final = 48  # bars each damaged-candle ingest reads


class LocalChaosLab:
    """The chaos suite's local infrastructure: a moto server on 127.0.0.1 and fresh resources
    per bench. Use as a context manager; it starts nothing else and leaves nothing running."""

    def __init__(
        self,
        data_dir: Path,
        analyzer: ScanAnalyzer,
        work_dir: Path,
        *,
        asof: str = "2021-05-01",
        top_n: int = 20,
        lambda_memory_mb: int = 2048,
        load_threads: int = 6,
        load_bursts: int = 2,
    ) -> None:
        if not 1 <= load_threads <= 16 or not 1 <= load_bursts <= 10:
            raise ValueError("load_threads must be 1-16 and load_bursts 1-10")
        self.data_dir = data_dir
        self.analyzer = analyzer
        self.work_dir = work_dir
        self.asof = asof
        self.top_n = top_n
        self.lambda_memory_mb = lambda_memory_mb
        self.load_threads = load_threads
        self.load_bursts = load_bursts
        self._server: Any = None
        self._endpoint: str | None = None
        self._analysis: Analysis | None = None
        self._bars: _MemoBars | None = None
        self._stack = contextlib.ExitStack()
        # moto keeps its backends per process: a second lab in one process must not see the
        # first one's tables, so every resource name carries this lab's run id.
        self.run_id = uuid.uuid4().hex[:8]

    def __enter__(self) -> LocalChaosLab:
        import logging

        from cst_devtools.loopback_http import quick_moto_server  # imports moto

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._stack.enter_context(_dummy_credentials())
        port = free_port()
        server = quick_moto_server(LOOPBACK, port)
        server.start()
        self._server = server
        self._stack.callback(server.stop)
        self._endpoint = f"http://{LOOPBACK}:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the chaos lab is not running")
        return self._endpoint

    def analysis(self) -> Analysis:
        if self._analysis is None:
            day = datetime.strptime(self.asof, "%Y-%m-%d").replace(tzinfo=UTC)
            self._analysis = self.analyzer.analyze(day, self.top_n)
        return self._analysis

    def _resources(self, name: str) -> tuple[AwsResources, AwsClients]:
        from cst_devtools.local_aws import ensure_resources

        prefix = f"chaos-{self.run_id}-{name}"
        res = AwsResources(
            lake_bucket=f"{prefix}-lake",
            orders_table=f"{prefix}-orders",
            positions_table=f"{prefix}-positions",
            state_table=f"{prefix}-state",
            kill_switch_param=f"/chaos/{self.run_id}/{name}/kill-switch",
            aws_endpoint_url=self.endpoint,
        )
        clients = AwsClients.build(res)
        ensure_resources(clients)
        return res, clients

    def scan_bench(self, name: str) -> _ScanBench:
        res, clients = self._resources(name)
        return _ScanBench(res, self.analyzer, self.data_dir, clients)

    @contextlib.contextmanager
    def ingest_bench(self, name: str) -> Iterator[_IngestBench]:
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData

        res, clients = self._resources(name)
        market = RecordedMarketData(self.data_dir)
        frame = market.ohlcv(
            CHAOS_SYMBOL, CHAOS_TIMEFRAME, utc_from_ms(0), datetime(2100, 1, 1, tzinfo=UTC)
        ).tail(_SERVED_BARS)
        if frame.height < _SERVED_BARS:
            raise RuntimeError(f"need {_SERVED_BARS} recorded {CHAOS_SYMBOL} candles")
        tf_ms = TIMEFRAME_MS[CHAOS_TIMEFRAME]
        now_ms = int(frame["ts"][_FIRST_WINDOW_END]) + tf_ms
        rows = frame.select("ts", "open", "high", "low", "close", "volume").rows()
        with LoopbackExchange(rows, hang_seconds=_HANG_S) as exchange:
            yield _IngestBench(
                exchange=exchange,
                lake_store=S3ParquetLake(res.lake_bucket, clients.s3),
                state=DynamoStateStore(res.state_table, clients.dynamodb),
                clock=FixedClock(utc_from_ms(now_ms)),
                served=frame,
                first_since_ms=(now_ms // tf_ms - _INITIAL_LOOKBACK) * tf_ms,
            )

    def safety_bench(self, name: str) -> _SafetyBench:
        res, clients = self._resources(name)
        return _SafetyBench(res, clients, FixedClock(datetime(2024, 3, 4, 9, 0, tzinfo=UTC)))

    def execution_bench(self, name: str) -> _ExecutionBench:
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData

        res, clients = self._resources(name)
        if self._bars is None:
            self._bars = _MemoBars(RecordedMarketData(self.data_dir))
        return _ExecutionBench(res, clients, self.analyzer, self._bars, EXECUTION_ASOF)

    @contextlib.contextmanager
    def input_bench(self, name: str) -> Iterator[_InputBench]:
        res, clients = self._resources(name)
        yield _InputBench.linked(self.data_dir, self.work_dir / name, res, clients, self.analyzer)

    @contextlib.contextmanager
    def disk_bench(self, name: str) -> Iterator[_DiskBench]:
        state_dir = self.work_dir / name
        if state_dir.exists():
            shutil.rmtree(state_dir)
        state_dir.mkdir(parents=True)
        yield _DiskBench(state_dir, self.data_dir)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(_child_main(sys.argv[1:]))


# --------------------------------------------------------------------------------------------
# Execution faults
# --------------------------------------------------------------------------------------------


class SsmThrottle:
    """Every ``GetParameter`` of one SSM client fails with ``ThrottlingException`` (the error
    the SDK raises once its retries are spent) while the context is open."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refused = 0

    def __enter__(self) -> SsmThrottle:
        self.client.meta.events.register("before-call.ssm.GetParameter", self._refuse)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.meta.events.unregister("before-call.ssm.GetParameter", self._refuse)

    def _refuse(self, **_kwargs: object) -> None:
        from botocore.exceptions import ClientError

        self.refused += 1
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (chaos)"}},
            "GetParameter",
        )


class _VenueWrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.creates = 0
        self.cancels: list[str] = []

    def create_order(self, *args: Any) -> Any:
        self.creates += 1
        return self.inner.create_order(*args)

    def fetch_order_by_client_id(self, symbol: Any, client_order_id: Any) -> Any:
        return self.inner.fetch_order_by_client_id(symbol, client_order_id)

    def cancel_order(self, symbol: Any, client_order_id: Any) -> None:
        self.cancels.append(client_order_id.value)
        self.inner.cancel_order(symbol, client_order_id)


class FlakyLookups(_VenueWrapper):
    """Lookups of the listed client IDs fail with a transient venue error (503)."""

    def __init__(self, inner: Any, failing: set[str]) -> None:
        super().__init__(inner)
        self.failing = failing

    def fetch_order_by_client_id(self, symbol: Any, client_order_id: Any) -> Any:
        from cryptosmarttrader.domain.exchange import RetryableExchangeError

        if client_order_id.value in self.failing:
            raise RetryableExchangeError("paper", "fetch_order", "503 Service Unavailable (chaos)")
        return super().fetch_order_by_client_id(symbol, client_order_id)


class UnreadableAcks(_VenueWrapper):
    """The venue takes every order, but its acknowledgement cannot be parsed (the adapter's
    ``InvalidPayloadError``, e.g. a status no mapping knows)."""

    def create_order(self, *args: Any) -> Any:
        from cryptosmarttrader.domain.exchange import InvalidPayloadError

        super().create_order(*args)
        raise InvalidPayloadError("paper", "create_order", "unknown order status 'PENDING_NEW'")


class LateOrders(_VenueWrapper):
    """The venue takes every order but the answer is lost (a read timeout), and lookups show
    the order only ``hidden_for`` after it was placed."""

    def __init__(self, inner: Any, clock: FixedClock, hidden_for: timedelta) -> None:
        super().__init__(inner)
        self.clock = clock
        self.hidden_for = hidden_for
        self.visible_from: dict[str, datetime] = {}

    def create_order(self, *args: Any) -> Any:
        from cryptosmarttrader.domain.exchange import OrderStateUnknownError

        super().create_order(*args)
        coid = args[-1].value
        self.visible_from[coid] = self.clock.now() + self.hidden_for
        raise OrderStateUnknownError("paper", "create_order", "read timeout (chaos)", coid)

    def fetch_order_by_client_id(self, symbol: Any, client_order_id: Any) -> Any:
        shown = self.visible_from.get(client_order_id.value)
        if shown is not None and self.clock.now() < shown:
            return None
        return super().fetch_order_by_client_id(symbol, client_order_id)


class _MemoBars:
    """The recorded bars with each symbol's file parsed once for the bench (same rows)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._files: dict[tuple[str, str], pl.DataFrame] = {}

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        return self.inner.daily_universe(asof, lookback_days)  # type: ignore[no-any-return]

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        key = (symbol, timeframe)
        if key not in self._files:
            self._files[key] = self.inner.ohlcv(
                symbol, timeframe, utc_from_ms(0), datetime(2100, 1, 1, tzinfo=UTC)
            )
        return self._files[key].filter(
            pl.col("ts").is_between(ms_from_utc(start), ms_from_utc(end))
        )


@dataclass
class _ExecutionBench:
    """The hourly execution cycle (``wiring.trading_cycle``) on fresh tables of the lab's moto
    server, over the recorded bars as the lake holds them (ingest lag), after one scan."""

    resources: AwsResources
    clients: AwsClients
    analyzer: ScanAnalyzer
    bars: Any
    asof: datetime
    venue: Any = None
    _late: Any = None

    def scan(self) -> Any:
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
        from cryptosmarttrader.wiring import scan_service

        clock = FixedClock(self.asof + timedelta(minutes=15))
        analyzer = ScanAnalyzer(
            market=self.analyzer.market,
            clock=clock,
            settings=self.analyzer.settings,
            excluded_symbols=self.analyzer.excluded_symbols,
        )
        return scan_service(analyzer, self.clients, self.resources, InMemoryMetrics()).run(
            self.asof
        )

    def cycle(
        self, at: datetime, fault: str | None = None, hidden_for: timedelta | None = None
    ) -> Any:
        from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
        from cryptosmarttrader.adapters.lake_timing import IngestLagMarketData
        from cryptosmarttrader.wiring import trading_cycle

        clock = FixedClock(at)
        settings = self.analyzer.settings
        built = trading_cycle(
            IngestLagMarketData(self.bars, clock),
            clock,
            self.clients,
            self.resources,
            settings,
            InMemoryMetrics(),
        )
        inner = built.execution.exchange
        if fault == "lookup_errors":
            live = sorted(
                str(o["client_order_id"]) for o in self.orders() if o["status"] == "ACCEPTED"
            )
            self.venue = FlakyLookups(inner, set(live[:1]))
        elif fault == "unreadable_acks":
            self.venue = UnreadableAcks(inner)
        elif fault == "late_orders":
            self.venue = LateOrders(inner, clock, hidden_for or timedelta(minutes=50))
        elif fault is not None and fault != "ssm_throttle":
            raise ValueError(f"unknown execution fault {fault!r}")
        if fault not in (None, "ssm_throttle"):
            built.execution.exchange = self.venue
        if fault == "ssm_throttle":
            with SsmThrottle(self.clients.ssm):
                return built.run()
        report = built.run()
        if fault == "late_orders":
            self._late = built
        return report

    def reconcile_late(self, at: datetime) -> ReconcileReport:
        """A restart's reconcile of the late-orders cycle at ``at``."""
        self.venue.clock.current = at
        report: ReconcileReport = self._late.execution.reconcile()
        return report

    def kill_switch(self, on: bool, at: datetime) -> None:
        from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch

        switch = SsmKillSwitch(
            self.resources.kill_switch_param, self.clients.ssm, FixedClock(at), 0
        )
        switch.set(on, "chaos drill", "chaos@local")

    def emergency(self, at: datetime) -> None:
        """A human drill: EMERGENCY (the switch turns on), then the switch turned off."""
        from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
        from cryptosmarttrader.domain.risk import RiskLevel
        from cryptosmarttrader.services.risk_state import RiskStateService

        clock = FixedClock(at)
        switch = SsmKillSwitch(self.resources.kill_switch_param, self.clients.ssm, clock, 0)
        state = DynamoStateStore(self.resources.state_table, self.clients.dynamodb)
        RiskStateService(state, switch, clock).override(
            RiskLevel.EMERGENCY, "chaos@local", "chaos drill: flatten the book"
        )
        self.kill_switch(False, at + timedelta(minutes=5))

    def orders(self) -> list[dict[str, Any]]:
        from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore

        return DynamoOrderStore(self.resources.orders_table, self.clients.dynamodb).list_orders()

    def positions(self) -> dict[str, float]:
        from cryptosmarttrader.adapters.dynamodb_store import DynamoPositionStore

        stored = DynamoPositionStore(
            self.resources.positions_table, self.clients.dynamodb
        ).get_all()
        return {s: float(p["quantity"]) for s, p in stored.items()}

    @property
    def venue_creates(self) -> int:
        return int(getattr(self.venue, "creates", 0))

    @property
    def venue_cancels(self) -> list[str]:
        return list(getattr(self.venue, "cancels", []))
