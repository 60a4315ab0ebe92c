"""The whole stack, started by the same launcher as `make run`, on free ports:
private Redis (or REDIS_URL's), Rasa, action server, web under gunicorn,
worker and emulators."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from sunshine.settings import ROOT
from tests.conftest import free_port, fresh_database

STARTUP_TIMEOUT_S = 240


@dataclass
class Stack:
    proc: subprocess.Popen
    env: dict[str, str]
    web: str
    wechat_api: str
    log: Path

    def stop(self, timeout: float = 60) -> list[psutil.Process]:
        """Ctrl-C the launcher as a terminal would; return what is still alive after it exits."""
        if self.proc.poll() is not None:
            return []
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        time.sleep(1)
        return [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("web", "rasa", "actions", "wechat", "bureau", "redis")}
    with fresh_database(folder) as db_url:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
        env.update(
            DATABASE_URL=db_url, WEB_PORT=str(ports["web"]), WEB_WORKERS="1",
            RASA_URL=f"http://127.0.0.1:{ports['rasa']}", ACTION_SERVER_URL=f"http://127.0.0.1:{ports['actions']}",
            WECHAT_API_BASE=f"http://127.0.0.1:{ports['wechat']}", BUREAU_URL=f"http://127.0.0.1:{ports['bureau']}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{ports['web']}", PRIVATE_REDIS_PORT=str(ports["redis"]),
            SECRET_KEY="integration-secret")
        log = folder / "stack.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sunshine.launcher", "run"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        s = Stack(proc, env, f"http://127.0.0.1:{ports['web']}", env["WECHAT_API_BASE"], log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the stack exited with {proc.returncode}:\n{s.log_tail()}")
            try:
                if requests.get(s.web + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                s.stop()
                pytest.fail(f"the stack was not ready within {STARTUP_TIMEOUT_S} s:\n{s.log_tail()}")
            time.sleep(1)
        yield s
        s.stop()
