"""Local HTTP servers that answer without waiting: no Nagle stall, a quick shutdown.

Python's ``http.server`` and werkzeug (under moto's ``ThreadedMotoServer``) write a response's
headers and its body in separate ``send`` calls. Without ``TCP_NODELAY`` the kernel holds the
body until the client acknowledges the headers, and a client on a kept-alive connection
acknowledges late (delayed ACK): about 40 ms lost per answer on Linux loopback, whatever the
work. Sockets accepted from a listening socket with ``TCP_NODELAY`` set carry it on Linux, so
:func:`answer_without_delay` on the server's socket covers every connection it accepts.

``socketserver``'s ``serve_forever`` looks at its shutdown flag every ``poll_interval``
(0.5 s by default): ``shutdown()`` waits up to that long. :func:`quick_moto_server` serves with
a 0.05 s poll.
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socketserver

    from moto.server import ThreadedMotoServer

SHUTDOWN_POLL_S = 0.05
"""How often a serving loop looks at its shutdown flag: the most ``shutdown()`` waits."""


def answer_without_delay(server: socketserver.TCPServer) -> None:
    """Every connection ``server`` accepts from now on sends each write at once (TCP_NODELAY)."""
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def quick_moto_server(ip_address: str, port: int) -> ThreadedMotoServer:
    """moto's threaded server (not started), answering without the Nagle stall and stopping
    within :data:`SHUTDOWN_POLL_S`.

    Same application, request handler and threading as :class:`ThreadedMotoServer`; only the
    listening socket's ``TCP_NODELAY`` and the serving loop's poll interval differ. moto is
    imported here, not with this module: the ``cst`` commands that import it stay light.
    """
    return _quick_moto_server_class()(ip_address=ip_address, port=port, verbose=False)


@functools.cache
def _quick_moto_server_class() -> type[ThreadedMotoServer]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class QuickMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # ThreadedMotoServer's, plus the two settings
            app = DomainDispatcherApplication(create_backend_app)
            server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            answer_without_delay(server)
            self._server = server
            self._server_ready_event.set()
            server.serve_forever(poll_interval=SHUTDOWN_POLL_S)

    return QuickMotoServer
