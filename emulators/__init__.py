"""Emulators of the systems the bank does not run here (WeChat's servers, the
credit bureau). They speak the real wire format, so the production clients
are the same code pointed at a different base URL, and tests and `make chat`
can see what was sent.

- `emulators.wechat` — WeChat's API (`python -m emulators.wechat`), and
  WeChat's side of the message webhook (`emulators.wechat.user.WeChatUser`,
  the `make chat` console `python -m emulators.wechat.chat`).
- `emulators.bureau` — the credit bureau's report API (`python -m emulators.bureau`).
- `emulators.corebank` — the bank core's open API: deposit and loan accounts (`python -m emulators.corebank`).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import ThreadedWSGIServer

STOP_WAIT_S = 5.0
# How often a test server's loop looks for a stop request: `stop` waits for the loop to see it,
# and socketserver's default (0.5 s) would add a quarter of a second to every test serving HTTP.
STOP_POLL_S = 0.02


class _TestServer(ThreadedWSGIServer):
    """werkzeug's threaded server, except that it knows its request threads, so that
    stopping it ends them too (werkzeug's are daemons nobody waits for)."""

    def __init__(self, host: str, port: int, app) -> None:
        super().__init__(host, port, app)
        self._requests: dict[threading.Thread, socket.socket] = {}
        self._lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._lock:
            self._requests[thread] = request
        thread.start()

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._requests.pop(threading.current_thread(), None)

    def stop(self) -> None:
        """Stop serving, close idle keep-alive connections, let requests in flight finish
        (for up to STOP_WAIT_S), so that no request thread outlives the server."""
        self.shutdown()
        with self._lock:
            requests = list(self._requests.items())
        for _, connection in requests:
            try:
                connection.shutdown(socket.SHUT_RD)  # no next request; an answer being written still goes out
            except OSError:
                pass
        deadline = time.monotonic() + STOP_WAIT_S
        for thread, _ in requests:
            thread.join(max(0.0, deadline - time.monotonic()))


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a WSGI `app` on a free port (or `port`) in a daemon thread; yields its base URL.
    On exit the server stops and so do its request threads (none outlives a test to log
    after it). For tests that need real HTTP."""
    server = _TestServer(host, port, app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": STOP_POLL_S},
        name=f"serve:{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.stop()
        thread.join(STOP_WAIT_S)


def serve_main(prog: str, description: str, make_app, default_port, banner: str, argv: list[str] | None = None) -> int:
    """The `python -m emulators.X` entry point: settings, --host/--port, serve until Ctrl-C.

    `make_app(settings)` builds the app; `default_port(settings)` gives the port.
    """
    import argparse
    import logging

    from werkzeug.serving import make_server

    from sunshine.settings import load_for_command

    settings = load_for_command()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port(settings))
    args = parser.parse_args(argv)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = make_server(args.host, args.port, make_app(settings), threaded=True)
    print(f"{banner} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
