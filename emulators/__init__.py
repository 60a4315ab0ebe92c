"""Emulators of the systems the bank does not run here (WeChat's servers, the
credit bureau). They speak the real wire format, so the production clients
are the same code pointed at a different base URL, and tests and `make chat`
can see what was sent.

- `emulators.wechat` — WeChat's API (`python -m emulators.wechat`), and
  WeChat's side of the message webhook (`emulators.wechat.user.WeChatUser`,
  the `make chat` console `python -m emulators.wechat.chat`).
- `emulators.bureau` — the credit bureau's report API (`python -m emulators.bureau`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a WSGI `app` on a free port (or `port`) in a daemon thread; yields its base URL
    and stops the server on exit. For tests that need real HTTP."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"serve:{server.server_port}", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_main(prog: str, description: str, make_app, default_port, banner: str, argv: list[str] | None = None) -> int:
    """The `python -m emulators.X` entry point: settings, --host/--port, serve until Ctrl-C.

    `make_app(settings)` builds the app; `default_port(settings)` gives the port.
    """
    import argparse
    import logging
    import sys

    from werkzeug.serving import make_server

    from sunshine.settings import ConfigError, load

    try:
        settings = load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
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
