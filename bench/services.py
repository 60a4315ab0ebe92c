"""What a benchmark needs besides the stack: a Redis, as `make run` provides one.

REDIS_URL when it is set (it must answer); else a private redis-server (sunshine.redis_server, the
one `make run` and the tests start), so that the benchmarks run on a fresh machine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sunshine import redis_server
from sunshine.local_stack import free_port
from sunshine.settings import load


@contextmanager
def redis_url() -> Iterator[str]:
    """The URL of a Redis for this benchmark: REDIS_URL's, or a private one stopped at the end."""
    configured = load().redis_url
    if configured:
        if not redis_server.reachable(configured, 2):
            raise SystemExit("cannot reach REDIS_URL: start that Redis, or leave REDIS_URL empty for a private one")
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        port = free_port()
        proc = redis_server.start(port, Path(tmp))
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)
