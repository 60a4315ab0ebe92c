"""`python -m bench.mp_api`: the mini-program API's read endpoints under load.

- `mp_api_p95_ms`: 50 mini-program users at once, each logged in through `/api/mp/login`
  (jscode2session on the WeChat API emulator, its UnionID one of the demo customers'), each
  asking `/api/mp/me`, `/credit-line`, `/applications` and `/authorizations` one after the
  other for ROUNDS rounds, THINK_S between two answers (a person tapping through the pages);
  the p95 of every answer's time (target under 150 ms).
- `mp_api_saturated_p95_ms`: the same 50 users without thinking, each asking again the moment
  an answer comes: the server's limit on the machine (the answer time is then the queue). The web
  server is gunicorn as the launcher starts it (`sunshine.launcher.services`: WEB_WORKERS,
  gthread), with the demo loaded and a private Redis; only the web server, Redis and the
  WeChat emulator run (no Rasa: the mini-program API does not ask it). The database is SQLite,
  or, when DATABASE_URL names a PostgreSQL one, a scratch database beside it (as bench.binding;
  production's: SQLite serializes every transaction, reads too, at BEGIN IMMEDIATE). Baseline null.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import requests
from sqlalchemy import select

from bench.binding import SECRET, scratch_database
from bench.results import percentile, record
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_emulator
from sunshine import redis_server
from sunshine.db import unit_of_work
from sunshine.launcher import services
from sunshine.local_stack import free_port
from sunshine.models import Customer
from sunshine.settings import Settings

USERS, ROUNDS, THINK_S = 50, 20, 0.5
READS = ("/api/mp/me", "/api/mp/credit-line", "/api/mp/applications", "/api/mp/authorizations")
STARTUP_TIMEOUT_S = 60


def _prepare(url: str) -> list[str]:
    """A UnionID for every demo customer (as if each had bound the mini-program); returns them."""
    with unit_of_work(url) as s:
        for customer in s.scalars(select(Customer).where(Customer.unionid.is_(None))):
            customer.unionid = f"u_bench_{customer.id}"
    with unit_of_work(url) as s:
        return list(s.scalars(select(Customer.unionid).order_by(Customer.id)))


def _wait_ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web server did not answer within {STARTUP_TIMEOUT_S} s")


def _login(web: str, wechat: str, i: int, unionid: str) -> requests.Session:
    http = requests.Session()
    code = http.post(f"{wechat}/_emulator/jscodes", json={"openid": f"m_bench_{i}", "unionid": unionid}).json()
    login = http.post(f"{web}/api/mp/login", json={"code": code["code"]}, timeout=10)
    login.raise_for_status()
    http.headers["Authorization"] = f"Bearer {login.json()['token']}"
    return http


def _user(http: requests.Session, web: str, think_s: float, latencies: list[float], lock: threading.Lock) -> None:
    mine = []
    for _ in range(ROUNDS):
        for path in READS:
            began = time.perf_counter()
            resp = http.get(web + path, timeout=10)
            mine.append((time.perf_counter() - began) * 1000)
            if resp.status_code != 200:
                raise RuntimeError(f"{path} answered {resp.status_code}: {resp.text[:200]}")
            time.sleep(think_s)
    with lock:
        latencies.extend(mine)


def _load(users: list[requests.Session], web: str, think_s: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_user, args=(http, web, think_s, latencies, lock)) for http in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(latencies) != USERS * ROUNDS * len(READS):
        raise RuntimeError(f"only {len(latencies)} answers: a user failed")
    return latencies


def measure(folder: Path, url: str) -> tuple[list[float], list[float]]:
    """Every answer's milliseconds: (with THINK_S, without)."""
    unionids = _prepare(url)
    redis_port, web_port = free_port(), free_port()
    redis_proc = redis_server.start(redis_port, folder)
    settings = replace(Settings(), database_url=url, redis_url=f"redis://127.0.0.1:{redis_port}/0", web_port=web_port)
    web = f"http://127.0.0.1:{web_port}"
    try:
        with serve_in_thread(wechat_emulator(settings)) as wechat:
            env = dict(
                os.environ,
                DATABASE_URL=url,
                REDIS_URL=settings.redis_url,
                WECHAT_API_BASE=wechat,
                SECRET_KEY=SECRET,
                LOG_LEVEL="WARNING",
                WEB_PORT=str(web_port),
            )
            command = next(service.command for service in services(settings) if service.name == "web")
            with (folder / "web.log").open("wb") as log:
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  the launcher's own gunicorn argv, no shell
            try:
                _wait_ready(web, proc)
                users = [_login(web, wechat, i, unionids[i % len(unionids)]) for i in range(USERS)]
                return _load(users, web, THINK_S), _load(users, web, 0)
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-mp-") as tmp, scratch_database(Path(tmp)) as url:
        thinking, saturated = measure(Path(tmp), url)
    database = url.split(":", 1)[0]
    for name, latencies in ((f"{THINK_S} s between reads", thinking), ("back to back", saturated)):
        p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
        print(
            f"mini-program API on {database}, {USERS} users x {ROUNDS} rounds x {len(READS)} reads, {name}: "
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms"
        )
    record(
        {
            "mp_api_p95_ms": (percentile(thinking, 95), "ms", None),
            "mp_api_saturated_p95_ms": (percentile(saturated, 95), "ms", None),
        }
    )


if __name__ == "__main__":
    main()
