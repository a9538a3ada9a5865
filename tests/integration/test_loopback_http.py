"""The local HTTP servers of the chaos lab answer without the Nagle stall and stop promptly:
``TCP_NODELAY`` on every accepted connection, a 0.05 s shutdown poll (``cst_devtools.loopback_http``)."""

from __future__ import annotations

import socket
import socketserver
from pathlib import Path
from typing import Any, cast

import boto3
import pytest

from cryptosmarttrader.services.scan import ScanAnalyzer
from cst_devtools.faults import LocalChaosLab, LoopbackExchange
from cst_devtools.loopback_http import SHUTDOWN_POLL_S, answer_without_delay, quick_moto_server


def _nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.fixture
def serve_polls(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The poll interval each socketserver's ``serve_forever`` runs with (werkzeug's calls it)."""
    polls: list[float] = []
    original = socketserver.BaseServer.serve_forever

    def recording(self: socketserver.BaseServer, poll_interval: float = 0.5) -> None:
        polls.append(poll_interval)
        original(self, poll_interval)

    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", recording)
    return polls


def test_connections_accepted_after_answer_without_delay_carry_tcp_nodelay() -> None:
    # Given a server whose accepted connections report their own TCP_NODELAY
    seen: list[int] = []

    class Report(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            seen.append(_nodelay(self.request))

    with socketserver.TCPServer(("127.0.0.1", 0), Report) as server:
        # When it is told to answer without delay, Then a connection it accepts has it set
        answer_without_delay(server)
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10):
            server.handle_request()
    assert seen and seen[0] != 0


def test_the_loopback_exchange_answers_without_delay_and_polls_its_shutdown_quickly(
    serve_polls: list[float],
) -> None:
    # Given the chaos suite's loopback exchange, When it runs, Then its listening socket (which
    # its connections inherit) has TCP_NODELAY and its serving loop polls every 0.05 s
    with LoopbackExchange([[0, 1, 1, 1, 1, 1]]) as exchange:
        server: Any = exchange._server
        assert _nodelay(server.socket) != 0
    assert serve_polls == [SHUTDOWN_POLL_S]


def test_the_quick_moto_server_serves_moto_without_delay_and_stops_quickly(
    serve_polls: list[float],
) -> None:
    # Given the quick moto server
    server = quick_moto_server("127.0.0.1", 0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # When a boto3 client writes and reads a parameter through it, Then moto answers it
        ssm = boto3.client(
            "ssm",
            region_name="us-east-1",
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        ssm.put_parameter(Name="/loopback/quick", Value="1", Type="String")
        assert ssm.get_parameter(Name="/loopback/quick")["Parameter"]["Value"] == "1"
        # And its listening socket has TCP_NODELAY
        assert server._server is not None
        assert _nodelay(server._server.socket) != 0
    finally:
        server.stop()
    # And it polled its shutdown flag every 0.05 s
    assert serve_polls == [SHUTDOWN_POLL_S]


def test_the_chaos_lab_runs_the_quick_moto_server(tmp_path: Path, serve_polls: list[float]) -> None:
    # Given the chaos lab, When it runs, Then its moto server is the quick one
    lab = LocalChaosLab(tmp_path, cast(ScanAnalyzer, None), tmp_path)  # no bench runs
    with lab:
        assert serve_polls == [SHUTDOWN_POLL_S]
        server: Any = lab._server
        assert _nodelay(server._server.socket) != 0
