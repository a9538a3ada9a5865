"""`cst api serve|openapi`: the API Lambda on localhost, and its OpenAPI document.

``serve`` runs the *same* handler as the deployed API Lambda over the embedded local AWS. A small
``http.server`` bridge plays API Gateway's part: it checks the ``x-api-key`` header (403 without
a valid key, as a usage-plan method does), turns each HTTP request into a REST API proxy event
(``requestContext.identity.apiKeyId`` filled as API Gateway fills it), invokes the handler and
writes its proxy response back. It binds to 127.0.0.1 only. State (kill-switch, audit trail) is
saved to the state directory after every state-changing request, before its answer is sent, and
again when the server stops (Ctrl-C, SIGTERM or SIGHUP).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

import typer

from cryptosmarttrader.cli._common import fail, state_dir

app = typer.Typer(no_args_is_help=True, help="The HTTP API: local server and OpenAPI document.")

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
DEFAULT_WEB_DIR: Final = REPO_ROOT / "web" / "dist"  # `make web` (npm ci && npm run build)
# What the dashboard's files may load and call: only this origin (the API is same-origin here).
WEB_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
LOOPBACK: Final = "127.0.0.1"
LOCAL_API_KEY_ID: Final = "local-api-key"
LOCAL_STAGE: Final = "local"
MAX_BODY_BYTES: Final = 64 * 1024
API_SERVICE: Final = "cst-api"

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class LocalLambdaContext:
    aws_request_id: str
    function_name: str = API_SERVICE
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:000000000000:function:{API_SERVICE}"


def proxy_event(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    api_key: str | None,
    request_id: str,
    source_ip: str = LOOPBACK,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as API Gateway builds it for a proxy integration."""
    split = urlsplit(raw_path)
    multi_query = parse_qs(split.query, keep_blank_values=True)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers.items():
        multi_headers.setdefault(name, []).append(value)
    at = now or datetime.now(tz=UTC)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": split.path,
        "path": split.path,
        "httpMethod": method,
        "headers": dict(headers) or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": split.path,
            "httpMethod": method,
            "path": f"/{LOCAL_STAGE}{split.path}",
            "stage": LOCAL_STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(at.timestamp() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "identity": {
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent") or headers.get("user-agent"),
                "apiKey": api_key,
                "apiKeyId": LOCAL_API_KEY_ID if api_key else None,
                "userArn": None,
                "user": None,
                "caller": None,
                "accessKey": None,
                "accountId": None,
            },
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
REQUEST_TIMEOUT_S: Final = 10.0  # per connection: a client that stalls is cut off after this


@dataclass(frozen=True)
class RouteAuth:
    """What API Gateway checks before the function runs, for one method of one route."""

    api_key: bool
    sigv4: bool


RouteTable = Mapping[str, Mapping[str, RouteAuth]]  # path → METHOD → checks


def canonical_path(path: str) -> str:
    """The route path a REST API (and Powertools' REST resolver) matches: no trailing slash."""
    return path.rstrip("/") or "/"


def route_methods(routes: RouteTable, path: str) -> Mapping[str, RouteAuth] | None:
    """The declared methods of the resource ``path`` is: an exact resource, else a template
    whose ``{name}`` parts each match one non-empty path segment (as API Gateway matches)."""
    exact = routes.get(path)
    if exact is not None:
        return exact
    parts = path.split("/")
    for template, methods in routes.items():
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(
            p == s or (p.startswith("{") and p.endswith("}") and s != "")
            for p, s in zip(pattern, parts, strict=True)
        ):
            return methods
    return None


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class ApiBridge(BaseHTTPRequestHandler):
    """One HTTP request → (API Gateway's checks) → proxy event → handler → HTTP response.

    Served by a threading server: each connection reads its request on its own thread, under a
    socket timeout, so a client that stalls never blocks the others; the handler itself runs one
    request at a time (see :class:`LocalApi`), as one Lambda instance does.
    """

    server_version = "cst-api-local"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    invoke: Invoke
    api_key: str
    routes: ClassVar[RouteTable] = {}
    web_root: ClassVar[Path | None] = None  # the built dashboard, served beside the API

    def __getattr__(self, name: str) -> Callable[[], None]:
        """Any other method (QUERY, PROPFIND...) goes through the same gate and gets a 405."""
        if name.startswith("do_"):
            return lambda: self._handle(name[3:])
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:
        self._handle("OPTIONS")

    def do_TRACE(self) -> None:
        self._handle("TRACE")

    def _handle(self, method: str) -> None:
        if self.web_root is not None and self._serve_web(method):
            return
        try:
            try:
                self._serve(method)
            except _HttpError as exc:
                if exc.close:
                    self.close_connection = True
                self._send_json(exc.status, {"message": exc.message})
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or went away: nothing to answer

    def _serve(self, method: str) -> None:
        request_id = str(uuid.uuid4())
        body = self._read_body()
        split = urlsplit(self.path)
        path = canonical_path(split.path)
        methods = route_methods(self.routes, path)
        if methods is None:
            # API Gateway answers an undeclared resource itself (403 "Missing Authentication
            # Token"); locally the plain HTTP answer is given. The handler never sees it.
            raise _HttpError(HTTPStatus.NOT_FOUND, "Not Found")
        auth = methods.get(method)
        if auth is None:
            # Likewise for an undeclared method of a declared resource.
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"Allow": ", ".join(sorted(methods))},
                b'{"message":"Method Not Allowed"}',
            )
            return
        sent_key = self.headers.get("x-api-key")
        key_ok = sent_key is not None and secrets.compare_digest(
            sent_key.encode("utf-8", "surrogateescape"), self.api_key.encode("utf-8")
        )
        if auth.api_key and not key_ok:
            # What API Gateway answers when a method requires an API key it did not get.
            raise _HttpError(HTTPStatus.FORBIDDEN, "Forbidden")
        if auth.sigv4 and not self.headers.get("Authorization"):
            # API Gateway's answer to an unsigned call of an IAM method. Locally the signature
            # itself is NOT verified: the API key is the only credential checked.
            raise _HttpError(HTTPStatus.FORBIDDEN, "Missing Authentication Token")
        target = path + (f"?{split.query}" if split.query else "")
        event = proxy_event(
            method,
            target,
            dict(self.headers.items()),
            body,
            api_key=sent_key if key_ok else None,
            request_id=request_id,
            source_ip=self.client_address[0],
        )
        try:
            result = type(self).invoke(event)
        except ApiStoppedError:
            raise _HttpError(HTTPStatus.SERVICE_UNAVAILABLE, "the server is stopping") from None
        except Exception:  # the bridge's last resort: a JSON 500, never a trace on the wire
            logging.getLogger(__name__).exception("local API request failed")
            raise _HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error") from None
        payload = result.get("body") or ""
        raw = (
            base64.b64decode(payload)
            if result.get("isBase64Encoded")
            else str(payload).encode("utf-8")
        )
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(HTTPStatus(int(result["statusCode"])), headers, raw)

    def _read_body(self) -> bytes:
        """The request body, by its Content-Length; a length that cannot be trusted is a 400."""
        if self.headers.get("Transfer-Encoding", "identity").strip().lower() != "identity":
            raise _HttpError(
                HTTPStatus.LENGTH_REQUIRED,
                "send the body with a Content-Length (chunked transfer encoding is not accepted)",
                close=True,
            )
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            return b""
        if len(values) > 1:
            raise _HttpError(
                HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers", close=True
            )
        (text,) = values
        if not (text.isascii() and text.isdigit()):
            raise _HttpError(
                HTTPStatus.BAD_REQUEST,
                f"Content-Length must be a non-negative integer, got {text[:40]!r}",
                close=True,
            )
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise _HttpError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"Payload Too Large (at most {MAX_BODY_BYTES} bytes)",
                close=True,
            )
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:  # the connection's socket timeout
            raise _HttpError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the request body did not arrive within {self.timeout} s",
                close=True,
            ) from None
        if len(body) != length:
            raise _HttpError(
                HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length", close=True
            )
        return body

    def _send_json(self, status: HTTPStatus, payload: Mapping[str, Any]) -> None:
        self._send(status, {}, json.dumps(payload).encode("utf-8"))

    def _serve_web(self, method: str) -> bool:
        """Serve a dashboard file for GET/HEAD outside the API's paths; False: not ours.

        Only regular files inside the web root are served (no traversal, no dot files), with
        the dashboard's security headers; no API key is needed for the files themselves."""
        path = urlsplit(self.path).path
        if (
            canonical_path(path) in self.routes
            or path.startswith("/api/")
            or method not in {"GET", "HEAD"}
        ):
            return False
        assert self.web_root is not None
        relative = "index.html" if path in {"", "/"} else path.lstrip("/")
        parts = relative.split("/")
        if any(p in {"", ".", ".."} or p.startswith(".") or "\\" in p for p in parts):
            self._send(HTTPStatus.NOT_FOUND, WEB_HEADERS, b'{"message":"Not Found"}')
            return True
        root = self.web_root.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._send(HTTPStatus.NOT_FOUND, WEB_HEADERS, b'{"message":"Not Found"}')
            return True
        body = target.read_bytes()
        immutable = parts[0] == "assets"  # content-hashed names
        headers = {
            **WEB_HEADERS,
            "Content-Type": CONTENT_TYPES.get(target.suffix, "application/octet-stream"),
            "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
        }
        self.send_response(HTTPStatus.OK)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method == "GET":
            self.wfile.write(body)
        return True

    def _send(self, status: HTTPStatus, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the handler logs every request as JSON with its correlation id."""


def declared_routes() -> dict[str, dict[str, RouteAuth]]:
    """Path → METHOD → API Gateway's checks, from the OpenAPI document (the deployed table)."""
    from cryptosmarttrader.handlers.api import API_KEY_SCHEME, SIGV4_SCHEME, openapi_json

    paths = json.loads(openapi_json())["paths"]
    routes: dict[str, dict[str, RouteAuth]] = {}
    for path, ops in paths.items():
        for method, op in ops.items():
            security = op.get("security", [])
            routes.setdefault(canonical_path(path), {})[method.upper()] = RouteAuth(
                api_key=any(API_KEY_SCHEME in req for req in security),
                sigv4=any(SIGV4_SCHEME in req for req in security),
            )
    return routes


def make_server(
    port: int,
    api_key: str,
    invoke: Invoke,
    web_root: Path | None = None,
    *,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0 = any free port) bridging to ``invoke``, and
    serving the built dashboard in ``web_root`` (if given) at ``/``."""
    attrs = {
        "invoke": staticmethod(invoke),
        "api_key": api_key,
        "routes": declared_routes(),
        "timeout": request_timeout_s,
        "web_root": web_root,
    }
    bridge = type("BoundApiBridge", (ApiBridge,), attrs)
    server = ThreadingHTTPServer((LOOPBACK, port), bridge)
    # an answer is two writes (headers, then body): on a kept-alive connection Nagle's algorithm
    # would hold the body until the client acknowledged the headers (~40 ms per answer)
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.daemon_threads = True  # a stalled client never holds up the shutdown
    server.block_on_close = False
    return server


def _local_environment(quiet_metrics: bool) -> dict[str, str]:
    env = {
        "POWERTOOLS_SERVICE_NAME": API_SERVICE,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CST_DATA_SOURCE": os.environ.get("CST_DATA_SOURCE", "recorded"),
    }
    if quiet_metrics:
        env["POWERTOOLS_METRICS_DISABLED"] = "true"
    return env


class ApiStoppedError(RuntimeError):
    """The local API is shutting down: no request reaches the handler any more."""


class LocalApi:
    """The API handler in-process, one request at a time, with the state saved after each write.

    Callable as ``invoke(event) -> response``. A request whose method can change state (anything
    but GET, HEAD, OPTIONS) is followed by a checkpoint of the local state before its answer
    leaves, so what a client was told is stored survives SIGTERM, SIGKILL or a crash.
    """

    def __init__(self, invoke: Invoke, checkpoint: Callable[[], None]) -> None:
        self._invoke = invoke
        self._checkpoint = checkpoint
        self._lock = threading.Lock()
        self._stopped = False

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._stopped:
                raise ApiStoppedError("the local API is stopping")
            try:
                return self._invoke(event)
            finally:
                if str(event.get("httpMethod", "")).upper() not in SAFE_METHODS:
                    self._checkpoint()

    def stop(self) -> None:
        """Wait for the request in flight, then refuse every later one."""
        with self._lock:
            self._stopped = True


@contextlib.contextmanager
def local_api(state: Path, *, quiet_metrics: bool = True) -> Iterator[LocalApi]:
    """The API handler, ready to invoke in-process over the embedded local AWS at ``state``."""
    from cryptosmarttrader.handlers import _common
    from cst_devtools.local_aws import embedded_aws

    saved = {k: os.environ.get(k) for k in _local_environment(quiet_metrics)}
    os.environ.update(_local_environment(quiet_metrics))
    from cryptosmarttrader.adapters.local_snapshot import saves_every_write

    try:
        with embedded_aws(state) as aws, saves_every_write(state):
            from cryptosmarttrader.handlers import api as api_handler

            _common.reset_caches()
            api_handler._service.cache_clear()

            def invoke(event: dict[str, Any]) -> dict[str, Any]:
                context = LocalLambdaContext(aws_request_id=event["requestContext"]["requestId"])
                result: dict[str, Any] = api_handler.handler(event, context)
                return result

            api = LocalApi(invoke, aws.checkpoint)
            try:
                yield api
            finally:
                api.stop()
                _common.reset_caches()
                api_handler._service.cache_clear()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _StopSignalError(Exception):
    """SIGTERM/SIGHUP received: stop serving; the state is saved on the way out."""


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP stop the server like Ctrl-C (KeyboardInterrupt) does; returns the
    handlers to restore."""

    def stop(signum: int, _frame: object) -> None:
        _ignore_stop_signals()
        raise _StopSignalError(signal.Signals(signum).name)

    previous: dict[int, Any] = {}
    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, stop if sig != signal.SIGINT else signal.getsignal(sig))
    return previous


def _ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


@app.command("serve")
def serve(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1.")
    ] = 8080,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="CST_API_KEY",
            help="Key clients send as x-api-key (default: a random key, printed at start).",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Embedded local AWS state (default: CST_STATE_DIR or .cst)."
        ),
    ] = None,
    emit_metrics: Annotated[
        bool, typer.Option("--metrics", help="Also print the EMF metric records.")
    ] = False,
    web: Annotated[
        Path | None,
        typer.Option(
            "--web",
            help="The built dashboard to serve at / (default: web/dist of this checkout).",
        ),
    ] = None,
) -> None:
    """Serve the API on http://127.0.0.1:PORT over the embedded local AWS (Ctrl-C stops)."""
    key = api_key or secrets.token_urlsafe(24)
    if len(key) < 16:
        fail("--api-key must be at least 16 characters")
    web_root = web or DEFAULT_WEB_DIR
    if web is not None and not (web / "index.html").is_file():
        fail(f"--web {web}: no index.html there (build the dashboard: run `make web`)")
    served = web_root if (web_root / "index.html").is_file() else None
    previous = _stop_on_signals()
    why = "Ctrl-C"
    try:
        with local_api(state_dir(state), quiet_metrics=not emit_metrics) as invoke:
            try:
                server = make_server(port, key, invoke, served)
            except OSError as exc:
                fail(f"cannot listen on {LOOPBACK}:{port}: {exc.strerror or exc}")
            host, bound = server.server_address[:2]
            typer.echo(f"CryptoSmartTrader API on http://{host!s}:{bound} (Ctrl-C stops)", err=True)
            if served is not None:
                typer.echo(
                    f"dashboard: http://{host!s}:{bound}/ (sign in with the x-api-key)", err=True
                )
            else:
                typer.echo(
                    f"dashboard not built ({DEFAULT_WEB_DIR} missing): run `make web`", err=True
                )
            if api_key is None:
                typer.echo(f"x-api-key: {key}", err=True)
            started = time.monotonic()
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            except _StopSignalError as exc:
                why = str(exc)
            finally:
                _ignore_stop_signals()  # a second signal must not interrupt the final save
                server.server_close()
                invoke.stop()  # the request in flight finishes; the state is saved on exit
            typer.echo(f"{why}: stopped after {time.monotonic() - started:.0f} s", err=True)
        typer.echo("state saved", err=True)
    except _StopSignalError as exc:  # stopped while starting: nothing was served or changed
        typer.echo(f"{exc}: stopped while starting", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("openapi")
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    server_url: Annotated[
        list[str] | None, typer.Option("--server", help="Server URL(s) to list in the document.")
    ] = None,
) -> None:
    """Print (or write) the OpenAPI 3 document of the API, generated from the handler's routes."""
    from cryptosmarttrader.handlers.api import openapi_json

    document = json.dumps(json.loads(openapi_json(server_url)), indent=2, sort_keys=False) + "\n"
    if output is None:
        sys.stdout.write(document)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)
