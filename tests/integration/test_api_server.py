"""`cst api serve` as a user runs it: the real server on a free loopback port, spoken to over HTTP.

Covers what a client or an operator can do to the server itself: stop it with a signal (the
state it acknowledged survives), dodge the IAM check with a trailing slash, send a Content-Length
that lies, or announce a body and never send it (nobody else may be blocked).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptosmarttrader.cli.api import local_api, make_server

API_KEY = "server-test-key-0123456789"
SIGNED = {
    "x-api-key": API_KEY,
    "Content-Type": "application/json",
    "Authorization": "AWS4-HMAC-SHA256 Credential=local (not verified locally)",
}
REQUEST_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.setenv("AWS_REGION", "us-east-1")
        mp.setenv("CST_DATA_SOURCE", "recorded")
        with local_api(tmp_path_factory.mktemp("state")) as invoke:
            srv = make_server(0, API_KEY, invoke, request_timeout_s=REQUEST_TIMEOUT_S)
            # shutdown() waits for the serving loop's next poll (0.5 s by default)
            thread = threading.Thread(
                target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            )
            thread.start()
            host, port = srv.server_address[:2]
            try:
                yield str(host), int(port)
            finally:
                srv.shutdown()
                srv.server_close()


def _request(
    server: tuple[str, int],
    method: str,
    path: str,
    headers: dict[str, str],
    body: str | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*server, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _raw(server: tuple[str, int], head: str, body: bytes = b"") -> tuple[int, dict[str, object]]:
    """Send bytes as written (no client library fixing them up); the status and JSON body."""
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                header, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", header).group(1))  # type: ignore[union-attr]
                if len(rest) >= length:
                    break
    raw = b"".join(chunks)
    header, _, payload = raw.partition(b"\r\n\r\n")
    status = int(header.split()[1])
    return status, json.loads(payload)


def _kill_switch_on(server: tuple[str, int]) -> bool:
    status, body = _request(server, "GET", "/api/v1/risk", {"x-api-key": API_KEY})
    assert status == 200
    on: bool = json.loads(body)["kill_switch"]["on"]
    return on


def test_the_server_sends_each_answer_without_the_nagle_stall() -> None:
    # Given the server `cst api serve` runs
    probe = make_server(0, API_KEY, lambda event: {})  # type: ignore[arg-type,return-value]
    try:
        # Then its listening socket, whose setting every accepted connection inherits on Linux,
        # sends each write at once: an answer is two writes (headers, then body), and on a
        # kept-alive connection (a browser, a requests session) Nagle's algorithm would hold the
        # body back until the client acknowledged the headers (about 40 ms per answer)
        assert probe.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        probe.server_close()


# --------------------------------------------------------------------------- trailing slash


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/killswitch/",
        "/api/v1/killswitch//",
        "/api/v1/killswitch/?x=1",
        "//api/v1/killswitch",
        "http://localhost/api/v1/killswitch/",
    ],
)
def test_a_trailing_slash_does_not_skip_the_iam_check(server: tuple[str, int], path: str) -> None:
    # Given the API key but no SigV4 signature
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}

    # When the kill-switch route is called with a trailing slash
    status, body = _request(
        server, "POST", path, headers, json.dumps({"on": True, "reason": "slash trick"})
    )

    # Then it is refused exactly like the route without one, and the switch did not move
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    assert _kill_switch_on(server) is False


def test_a_trailing_slash_reaches_the_same_route_with_the_same_checks(
    server: tuple[str, int],
) -> None:
    status, _ = _request(server, "GET", "/api/v1/risk/", {})
    assert status == 403
    status, body = _request(server, "GET", "/api/v1/risk/", {"x-api-key": API_KEY})
    assert status == 200 and "kill_switch" in json.loads(body)


@pytest.mark.parametrize("path", ["/api/v1/kill%73witch", "/api/v1/killswitch/x", "/nowhere"])
def test_an_undeclared_path_never_reaches_the_handler(server: tuple[str, int], path: str) -> None:
    status, body = _request(
        server, "POST", path, {"x-api-key": API_KEY}, json.dumps({"on": True, "reason": "x"})
    )
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert _kill_switch_on(server) is False


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/coins/bitcoin", 404),  # the route, answered by the handler (no data here)
        ("/api/v1/coins/bitcoin/", 404),
        ("/api/v1/coins/", 404),  # no symbol: not the template
        ("/api/v1/coins/a/b", 404),  # two segments: not the template
    ],
)
def test_a_path_parameter_route_is_matched_by_its_template(
    server: tuple[str, int], path: str, expected: int
) -> None:
    # Without the key the template route is refused by the key check (it exists), an undeclared
    # path by the route check (it does not)
    status, body = _request(server, "GET", path, {})
    declared = path.rstrip("/").count("/") == 4 and not path.endswith("/coins/")
    assert status == (403 if declared else 404), (path, body)
    # With the key a declared coin reaches the handler, which names the missing symbol
    status, body = _request(server, "GET", path, {"x-api-key": API_KEY})
    assert status == expected
    if declared:
        assert "bitcoin" in json.loads(body)["message"]


# --------------------------------------------------------------------------- Content-Length


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "+7", "0x10", " 12 3"])
def test_a_malformed_content_length_is_a_400_with_a_json_error(
    server: tuple[str, int], length: str
) -> None:
    status, body = _raw(
        server,
        "POST /api/v1/killswitch HTTP/1.1\nHost: localhost\n"
        f"x-api-key: {API_KEY}\nAuthorization: local\nContent-Length: {length}\n\n",
    )
    assert status == 400
    assert "Content-Length must be a non-negative integer" in str(body["message"])
    assert _kill_switch_on(server) is False


def test_conflicting_content_lengths_are_refused(server: tuple[str, int]) -> None:
    payload = b'{"on": true, "reason": "smuggle"}'
    status, body = _raw(
        server,
        "POST /api/v1/killswitch HTTP/1.1\nHost: localhost\n"
        f"x-api-key: {API_KEY}\nAuthorization: local\nContent-Type: application/json\n"
        f"Content-Length: {len(payload)}\nContent-Length: 3\n\n",
        payload,
    )
    assert status == 400 and body == {"message": "conflicting Content-Length headers"}
    assert _kill_switch_on(server) is False


def test_a_chunked_body_is_refused_with_411(server: tuple[str, int]) -> None:
    status, body = _raw(
        server,
        "POST /api/v1/killswitch HTTP/1.1\nHost: localhost\nx-api-key: "
        f"{API_KEY}\nAuthorization: local\nTransfer-Encoding: chunked\n\n",
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    assert status == 411 and "Content-Length" in str(body["message"])


def test_an_oversized_body_is_refused_before_it_is_read(server: tuple[str, int]) -> None:
    status, body = _raw(
        server,
        "POST /api/v1/killswitch HTTP/1.1\nHost: localhost\n"
        f"x-api-key: {API_KEY}\nAuthorization: local\nContent-Length: 10000000\n\n",
    )
    assert status == 413 and "Payload Too Large" in str(body["message"])


# --------------------------------------------------------------------------- stalled client


def test_a_client_that_dribbles_its_body_blocks_nobody(server: tuple[str, int]) -> None:
    # Given a client that announces a body and sends it one byte at a time, for up to a minute
    # (each byte arrives within the socket timeout, so the server keeps waiting for it)
    slow = socket.create_connection(server, timeout=30)
    slow.sendall(
        b"POST /api/v1/killswitch HTTP/1.1\r\nHost: localhost\r\n"
        + f"x-api-key: {API_KEY}\r\nAuthorization: local\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    stop = threading.Event()

    def dribble() -> None:
        for _ in range(120):
            if stop.wait(0.5):
                return
            slow.sendall(b" ")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    try:
        # When another client calls meanwhile
        status, body = _request(server, "GET", "/health", {}, timeout=30)

        # Then it is answered while the slow one is still sending
        assert dribbler.is_alive()
        assert (status, json.loads(body)) == (200, {"status": "ok"})
    finally:
        stop.set()
        dribbler.join()
        slow.close()


def test_a_client_that_never_sends_its_body_gets_408_and_is_cut_off(
    server: tuple[str, int],
) -> None:
    stalled = socket.create_connection(server, timeout=60)
    stalled.sendall(
        b"POST /api/v1/killswitch HTTP/1.1\r\nHost: localhost\r\n"
        + f"x-api-key: {API_KEY}\r\nAuthorization: local\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    try:
        leftover = b""
        while chunk := stalled.recv(4096):  # EOF once the server gives up on it
            leftover += chunk
        assert leftover.startswith(b"HTTP/1.1 408"), leftover
        assert _kill_switch_on(server) is False
    finally:
        stalled.close()


# --------------------------------------------------------------------------- signals


def _start_cli_server(state: Path) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    env = {
        **os.environ,
        "CST_STATE_DIR": str(state),
        "CST_API_KEY": API_KEY,
        "CST_DATA_SOURCE": "recorded",
        "AWS_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptosmarttrader.cli", "api", "serve", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:  # the server prints its URL once it listens
        lines.append(line)
        if match := re.search(r"http://(127\.0\.0\.1):(\d+)", line):
            return proc, (match.group(1), int(match.group(2)))
    proc.kill()
    pytest.fail(f"cst api serve did not start: {''.join(lines)}")


def _switch_in_snapshot(state: Path) -> dict[str, object]:
    snapshot = json.loads((state / "snapshot.json").read_text())
    (param,) = [p for p in snapshot["parameters"] if p["name"] == "/cst/kill-switch"]
    value: dict[str, object] = json.loads(param["value"])
    return value


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_kill_switch_set_through_the_api_survives_stopping_the_server(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # Given `cst api serve` running as a user starts it
    proc, address = _start_cli_server(tmp_path)
    try:
        # When the kill-switch is turned on through the API, then the server gets a signal
        status, body = _request(
            address, "POST", "/api/v1/killswitch", SIGNED,
            json.dumps({"on": True, "reason": f"drill before {sig.name}"}),
        )  # fmt: skip
        assert status == 200, body
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Then the stored state has the switch on, with the reason and the API caller
    assert _switch_in_snapshot(tmp_path) | {"at": None} == {
        "on": True,
        "reason": f"drill before {sig.name}",
        "actor": "apikey:local-api-key",
        "at": None,
    }
    if sig is not signal.SIGKILL:  # a catchable signal is a clean stop
        assert proc.returncode == 0, stderr
        assert "state saved" in stderr and "Traceback" not in stderr
