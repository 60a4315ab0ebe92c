"""A TCP load balancer in front of several web nodes, as a province's LVS or haproxy in TCP
mode would be (for the multi-node tests and benchmarks). Each new connection goes to the
next node in turn (nothing sticky beyond a connection: WeChat's retry of a message, on a new
connection, lands on another node than its first try half of the time); a node that refuses
the connection is skipped for the next one. When a node dies with a connection open, that
connection is closed without an answer, as the node's host would have left it: WeChat sees a
failed push and retries.

    with serve_balancer([node_a.web, node_b.web]) as url:
        user = WeChatUser(url + "/wechat", ...)
"""

from __future__ import annotations

import itertools
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

CHUNK = 65536
CONNECT_TIMEOUT_S = 2


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backends: list[tuple[str, int]]):
        super().__init__(("127.0.0.1", 0), _Connection)
        self.backends = backends
        self.turn = itertools.count()
        self.passed_on = 0  # connections a refusing node passed to the next one


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        first = next(self.server.turn)
        backends = self.server.backends
        for i in range(len(backends)):
            try:
                upstream = socket.create_connection(backends[(first + i) % len(backends)], CONNECT_TIMEOUT_S)
                break
            except OSError:
                self.server.passed_on += 1
        else:
            return  # no node: the client's connection is closed unanswered
        upstream.settimeout(None)
        with upstream, selectors.DefaultSelector() as sel:
            sel.register(self.request, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, self.request)
            while True:
                for key, _ in sel.select():
                    try:
                        data = key.fileobj.recv(CHUNK)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return


@contextmanager
def serve_balancer(backends: list[str]) -> Iterator[str]:
    """Balance over `backends` (base URLs) on a free port; yields the balancer's base URL."""
    addresses = [(urlsplit(b).hostname or "127.0.0.1", urlsplit(b).port or 80) for b in backends]
    server = _Server(addresses)
    thread = threading.Thread(target=server.serve_forever, name="balancer", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
