"""The whole stack started by the same launcher as `make run`, on free ports,
for the integration tests and the benchmarks: private Redis, Rasa, action
server, web under gunicorn, workers and emulators; or several nodes of it
on this machine as separate hosts would run them (`start_cluster`)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from sunshine.launcher import NODE_ROLES
from sunshine.settings import ROOT

STARTUP_TIMEOUT_S = 240


class StackFailed(RuntimeError):
    """The stack exited or was not ready in time; the message ends with its log."""


# The kernel gives the local ends of outgoing connections ports from this range.
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000


def free_port() -> int:
    """A port nothing is bound to, chosen at random below the kernel's range for outgoing connections.
    A port the kernel hands out (bind to port 0) can become the local end of a client connection (a
    pooled database connection keeps one for hours) before the service meant to listen on it binds it."""
    try:
        first_ephemeral = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 0
    for _ in range(200):
        port = LOWEST_PORT + secrets.randbelow(first_ephemeral - LOWEST_PORT) if first_ephemeral > LOWEST_PORT else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port below the ephemeral range")


def service_of(proc: psutil.Process) -> str | None:
    """The launcher service a process belongs to ("rasa", "web", "worker.0", ...), from the
    SUNSHINE_SERVICE the launcher gives each service and its children; None for others."""
    # redis-server writes its process title over its environment: known by its name.
    if proc.name() == "redis-server":
        return "redis"
    return proc.environ().get("SUNSHINE_SERVICE")


@dataclass
class Stack:
    proc: subprocess.Popen
    env: dict[str, str]
    web: str
    wechat_api: str
    rasa: str
    log: Path
    roles: str | None = None  # `run --roles`; None: every role
    _before_kill: dict[str, set[int]] = field(default_factory=dict, repr=False)

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

    def kill_all(self) -> None:
        """SIGKILL the launcher and every process it started, at once, as the loss of its host would:
        nothing is restarted, nothing stops cleanly."""
        groups = {self.proc.pid: None}  # the launcher's own group first: nothing restarts after it
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                groups[os.getpgid(p.pid)] = None
            except ProcessLookupError:
                continue
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def processes(self, service: str) -> list[psutil.Process]:
        """The live processes of one launcher service ("redis", "rasa", "actions", "web", "worker.0", ...),
        the service's own process first, then its children (e.g. gunicorn's workers)."""
        found = {}
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if service_of(p) == service and p.status() != psutil.STATUS_ZOMBIE:
                    found[p] = p.ppid()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        pids = {p.pid for p in found}
        return sorted(found, key=lambda p: (found[p] in pids, p.pid))

    def kill(self, service: str, child: bool = False) -> int:
        """SIGKILL a service's own process (or, with `child`, one of its children, e.g. a gunicorn
        worker) as a crash would; returns the pid killed. The launcher restarts it."""
        procs = self.processes(service)
        pids = {p.pid for p in procs}
        targets = procs[1:] if child else procs[:1]
        if not targets:
            raise LookupError(f"no {'child of ' if child else ''}{service} process running")
        self._before_kill[service] = pids
        targets[0].send_signal(signal.SIGKILL)
        return targets[0].pid

    def wait_restarted(self, service: str, old_pid: int, timeout: float = 120) -> int:
        """Wait until the service's own process runs again under a new pid; returns it."""
        old = self._before_kill.get(service, set()) | {old_pid}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            procs = self.processes(service)
            if procs and procs[0].pid not in old:
                return procs[0].pid
            time.sleep(0.2)
        raise StackFailed(f"{service} was not restarted within {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def redis_url(self) -> str:
        """The stack's private Redis, with its password."""
        return f"redis://:{self.env['PRIVATE_REDIS_PASSWORD']}@127.0.0.1:{self.env['PRIVATE_REDIS_PORT']}/0"

    def rasa_http(self) -> requests.Session:
        """An HTTP session for Rasa's API and REST channel with the stack's RASA_TOKEN (as
        the web and workers call it); without it Rasa answers 401."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.env['RASA_TOKEN']}"
        http.params = {"token": self.env["RASA_TOKEN"]}
        return http

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start(
    folder: Path, database_url: str, roles: str | None = None, join: Stack | None = None, **settings: str
) -> Stack:
    """Launch the stack with its log in `folder`; returns once it is ready (`/readyz` answers 200;
    without the web role, Rasa and the action server answer). `roles`: only these (`run --roles`);
    `join`: a running stack whose Redis, Rasa, action server, emulators, tokens and secret this one
    shares, on a web port of its own (another node). `settings` are extra environment variables."""
    return wait_ready(launch(folder, database_url, roles, join, **settings))


def launch(
    folder: Path, database_url: str, roles: str | None = None, join: Stack | None = None, **settings: str
) -> Stack:
    """`start` without waiting for it to be ready."""
    folder.mkdir(parents=True, exist_ok=True)
    if join is not None:
        web_port = free_port()
        env = dict(join.env)
        env.update(
            WEB_PORT=str(web_port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
            REDIS_URL=join.redis_url,
            SUNSHINE_RUN_DIR=str(folder / "run"),
        )
    else:
        env = _env(folder, database_url)
    env.update(settings)
    log = folder / "stack.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603  our own fixed argv (the launcher), no shell
            [sys.executable, "-m", "sunshine.launcher", "run", *(["--roles", roles] if roles else [])],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web = f"http://127.0.0.1:{env['WEB_PORT']}"
    return Stack(proc, env, web, env["WECHAT_API_BASE"], env["RASA_URL"], log, roles)


def _env(folder: Path, database_url: str) -> dict[str, str]:
    ports = {
        name: free_port()
        for name in ("web", "rasa", "actions", "wechat", "bureau", "corebank", "wecom", "sms", "faceid", "redis")
    }
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url,
        WEB_PORT=str(ports["web"]),
        WEB_WORKERS="1",
        RASA_URL=f"http://127.0.0.1:{ports['rasa']}",
        ACTION_SERVER_URL=f"http://127.0.0.1:{ports['actions']}",
        WECHAT_API_BASE=f"http://127.0.0.1:{ports['wechat']}",
        BUREAU_URL=f"http://127.0.0.1:{ports['bureau']}",
        CORE_BANKING_URL=f"http://127.0.0.1:{ports['corebank']}",
        WECOM_API_BASE=f"http://127.0.0.1:{ports['wecom']}",
        SMS_API_BASE=f"http://127.0.0.1:{ports['sms']}",
        FACEID_URL=f"http://127.0.0.1:{ports['faceid']}",
        WECHAT_OPEN_BASE=f"http://127.0.0.1:{ports['wechat']}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{ports['web']}",
        PRIVATE_REDIS_PORT=str(ports["redis"]),
        SECRET_KEY="local-stack-secret",  # noqa: S106  the throw-away secret of a local test stack
        # a development stack: the demo village and officers, and this stack's own service tokens
        SUNSHINE_DEMO="1",
        RASA_TOKEN=secrets.token_urlsafe(32),
        ACTION_SERVER_TOKEN=secrets.token_urlsafe(32),
        PRIVATE_REDIS_PASSWORD=secrets.token_urlsafe(24),
        SUNSHINE_RUN_DIR=str(folder / "run"),
        EVIDENCE_CHECKPOINT_DIR=str(folder / "evidence-checkpoints"),  # checkpoints belong to one database
    )
    return env


def _answers(url: str, **options) -> bool:
    try:
        return requests.get(url, timeout=2, **options).status_code == 200
    except requests.RequestException:
        return False


def is_ready(stack: Stack) -> bool:
    """`/readyz` answers 200; a stack without the web role: Rasa (its model loaded) and the action server answer."""
    if stack.roles is None or "web" in stack.roles.split(","):
        return _answers(stack.web + "/readyz")
    return _answers(stack.rasa + "/status", params={"token": stack.env["RASA_TOKEN"]}) and _answers(
        stack.env["ACTION_SERVER_URL"] + "/health"
    )


def wait_ready(stack: Stack, timeout_s: float = STARTUP_TIMEOUT_S) -> Stack:
    deadline = time.monotonic() + timeout_s
    while not is_ready(stack):
        if stack.proc.poll() is not None:
            raise StackFailed(f"the stack exited with {stack.proc.returncode}:\n{stack.log_tail()}")
        if time.monotonic() > deadline:
            stack.stop()
            raise StackFailed(f"the stack was not ready within {timeout_s:.0f} s:\n{stack.log_tail()}")
        time.sleep(1)
    return stack


# The shared part of a cluster on one machine: one Redis, Rasa, action server and emulators.
SHARED_ROLES = "rasa,actions,emulators"


@dataclass
class Cluster:
    """Nodes of web, workers and duties (`NODE_ROLES`) sharing one database and one `shared` stack."""

    shared: Stack
    nodes: list[Stack]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.shared.stop()


def start_cluster(folder: Path, database_url: str, nodes: int = 2, **settings: str) -> Cluster:
    """The shared stack, then `nodes` nodes named node-a, node-b, ... each with its own web port and
    process group, started together; returns once every one is ready."""
    shared = start(folder / "shared", database_url, SHARED_ROLES, None, **settings)
    cluster = Cluster(shared, [])
    try:
        for n in range(nodes):
            cluster.nodes.append(add_node(cluster, folder, n, ready=False, **settings))
        for node in cluster.nodes:
            wait_ready(node)
    except StackFailed:
        cluster.stop()
        raise
    return cluster


def add_node(cluster: Cluster, folder: Path, n: int, ready: bool = True, **settings: str) -> Stack:
    """Start node `n` (node-a for 0) of the cluster: web, workers and duties; returns it (once ready)."""
    name = f"node-{chr(ord('a') + n)}"
    node = launch(
        folder / name,
        cluster.shared.env["DATABASE_URL"],
        ",".join(NODE_ROLES),
        cluster.shared,
        NODE_NAME=name,
        **settings,
    )
    return wait_ready(node) if ready else node
