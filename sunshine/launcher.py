"""`make run`: check the configuration, prepare the database, and start every
process under one supervisor (`sunshine.supervisor`, built on honcho) that
restarts a process that dies and stops them all on Ctrl-C.

    python -m sunshine.launcher check    # only the checks, one line per problem
    python -m sunshine.launcher prepare  # checks, migrations (and demo data with SUNSHINE_DEMO on)
    python -m sunshine.launcher run      # all of it, then every process
    python -m sunshine.launcher run --roles web,worker   # only these roles' processes (a node of several)

`--demo` (what `make run` passes) turns SUNSHINE_DEMO on unless `.env` or the environment
say otherwise, and with it FACE_CHALLENGE_DEMO_ORDER (the demo camera's fixed face challenge,
`python -m auth_flow demo-camera`) unless they set it (empty: the random challenge). A problem
stops start-up with one line per problem saying what is wrong and how to fix it;
with SUNSHINE_ENV=production every unsafe setting is one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import inspect, text

from lending.data_files import data_file_problems
from sunshine import redis_server
from sunshine.db import make_engine, unit_of_work
from sunshine.demo import demo_faces_dir, demo_leftovers, load_demo, load_demo_references
from sunshine.metrics import count
from sunshine.migrate import upgrade
from sunshine.models import Officer
from sunshine.redis import connect
from sunshine.settings import DEMO_CHALLENGE_ORDER, ROOT, VAR, ConfigError, Settings, load
from sunshine.supervisor import Supervisor

MODEL = VAR / "models" / "sunshine.tar.gz"
# Rasa's endpoints.yml and the private Redis's append-only file; a stack of its own
# (sunshine.local_stack) gets a folder of its own.
RUN_DIR = Path(os.environ.get("SUNSHINE_RUN_DIR") or VAR / "run")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
BIN = Path(sys.executable).parent


class StartupError(Exception):
    """Start-up cannot go on; the message is one line per problem for the operator."""

    def __init__(self, *lines: str):
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: list[str]
    uses_database: bool = True  # False: starts while the database is prepared (Rasa loads its model meanwhile)
    roles: frozenset[str] = frozenset()  # what `--roles` names it by (ROLES)


# The periodic duties, each a role of its own, all run by one process (`python -m duties`, whose
# DUTIES these name).
DUTY_ROLES = ("escalator", "reminder", "inspection", "watcher", "sweeper", "checkpointer")
# The roles a node can run (`run --roles`), each one or more of `services`; without `--roles`, all.
ROLES = ("web", "worker", "rasa", "actions", *DUTY_ROLES, "emulators")
# The roles of a node of web and workers: each duty runs on every such node and acts once (sunshine.leases).
NODE_ROLES = ("web", "worker", *DUTY_ROLES)


def _local_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.hostname in LOCAL_HOSTS:
        return parts.port or (443 if parts.scheme == "https" else 80)
    return None


def parse_roles(text: str) -> frozenset[str]:
    """`web,worker` as a set of roles; an unknown one is a StartupError naming the known ones."""
    roles = frozenset(r.strip() for r in text.split(",") if r.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise StartupError(
            f"--roles: unknown role {', '.join(unknown) or '(none given)'}; the roles: {', '.join(ROLES)}"
        )
    return roles


def _role_port(url: str, asked: bool) -> int | None:
    """The port a role reached at `url` listens on here: when asked for by `--roles`, wherever the
    URL points (this node is that host); otherwise only when the URL is on this machine."""
    if asked:
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else 80)
    return _local_port(url)


def services(s: Settings, roles: frozenset[str] | None = None) -> list[Service]:
    """The processes this machine runs, from the settings: every role's, or only `roles`'."""
    out = [svc for svc in _all_services(s, roles) if roles is None or svc.roles & roles]
    missing = sorted((roles or frozenset()) - frozenset().union(*(svc.roles for svc in out)))
    if missing:
        raise StartupError(
            f"--roles {', '.join(missing)}: nothing to start (the emulators start only for service URLs on this "
            "machine, the face-verification emulator only with FACE_ENGINE=certified)"
        )
    return out


def _all_services(s: Settings, roles: frozenset[str] | None) -> list[Service]:
    py = str(BIN / "python")
    out = [
        Service(
            "web",
            s.web_port,
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(s.web_workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(s.web_threads),
                "--bind",
                f"{s.bind_host}:{s.web_port}",
                "--timeout",
                "30",
                "--graceful-timeout",
                "10",
                "webhooks:create_app()",
            ],
            roles=frozenset({"web"}),
        )
    ]
    rasa_port = _role_port(s.rasa_url, bool(roles and "rasa" in roles))
    if rasa_port:
        # `rasa run` with the action server's answers checked by a prepared validator (bot/server.py).
        out.append(
            Service(
                "rasa",
                rasa_port,
                [
                    py,
                    "-m",
                    "bot.server",
                    "run",
                    # bot.server adds --auth-token RASA_TOKEN (from the settings, not this visible command line)
                    "--enable-api",
                    "--model",
                    str(MODEL),
                    "--endpoints",
                    str(RUN_DIR / "endpoints.yml"),
                    "--credentials",
                    str(ROOT / "bot" / "credentials.yml"),
                    "--interface",
                    s.bind_host,
                    "--port",
                    str(rasa_port),
                ],
                uses_database=False,
                roles=frozenset({"rasa"}),
            )
        )
    action_port = _role_port(s.action_server_url, bool(roles and "actions" in roles))
    if action_port:
        out.append(
            Service(
                "actions",
                action_port,
                # rasa-sdk's action server, refusing calls without ACTION_SERVER_TOKEN (bot/action_server.py)
                [py, "-m", "bot.action_server", "--actions", "bot.actions", "--port", str(action_port)],
                uses_database=False,  # only its actions do, called once the web is ready
                roles=frozenset({"actions"}),
            )
        )
    out += [
        Service(f"worker.{n}", 0, [py, "-m", "conversation.worker", str(n)], roles=frozenset({"worker"}))
        for n in range(s.worker_processes)
    ]
    duties = [role for role in DUTY_ROLES if roles is None or role in roles]
    if duties:
        out.append(Service("duties", 0, [py, "-m", "duties", *duties], roles=frozenset(duties)))
    for name, url, module in (
        ("wechat-emulator", s.wechat_api_base, "emulators.wechat"),
        ("bureau-emulator", s.bureau_url, "emulators.bureau"),
        ("corebank-emulator", s.core_banking_url, "emulators.corebank"),
        ("wecom-emulator", s.wecom_api_base, "emulators.wecom"),
        ("sms-emulator", s.sms_api_base, "emulators.sms"),
        # the face-verification service is called only by the certified face engine
        ("faceid-emulator", s.faceid_url if s.face_engine == "certified" else "", "emulators.faceid"),
    ):
        port = _local_port(url)
        if port:
            out.append(
                Service(
                    name,
                    port,
                    [py, "-m", module, "--port", str(port)],
                    uses_database=False,
                    roles=frozenset({"emulators"}),
                )
            )
    return out


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(s: Settings, private_redis_port: int | None, roles: frozenset[str] | None = None) -> None:
    wanted = [(svc.name, svc.port) for svc in services(s, roles) if svc.port]
    if private_redis_port:
        wanted.append(("redis", private_redis_port))
    for name, port in wanted:
        if not port_free(port, s.bind_host if name in ("web", "rasa", "actions") else "127.0.0.1"):
            raise StartupError(
                f"port {port} ({name}) is already in use: stop what listens there "
                f"(ss -ltnp 'sport = :{port}') or choose another port in .env"
            )


def check_database(s: Settings) -> None:
    engine = make_engine(s.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # driver errors differ per database: report the first line
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(
            f"cannot reach DATABASE_URL={Settings.public(s)['database_url']}: {reason}; "
            "start the database or correct DATABASE_URL"
        ) from None
    finally:
        engine.dispose()


def check_model() -> None:
    if not MODEL.is_file():
        raise StartupError(f"no trained model at {MODEL.relative_to(ROOT)}: run `make train` (or `make run`)")


def rasa_endpoints(s: Settings) -> str:
    """Rasa's endpoints.yml: the action server (called with its token), and REDIS_URL (its password,
    TLS, or Sentinel) for trackers (Rasa's store without its read-back before each write:
    bot/tracker_store.py) and locks (bot/lock_store.py), both connected by sunshine.redis.connect."""
    headers = ""
    if s.action_server_token:
        headers = f"\n  headers:\n    Authorization: {json.dumps('Bearer ' + s.action_server_token)}"
    redis = f"  url: {json.dumps(s.redis_url)}"
    return (
        f"action_endpoint:\n  url: {s.action_server_url.rstrip('/')}/webhook{headers}\n"
        f"tracker_store:\n  type: bot.tracker_store.RedisTrackerStore\n{redis}\n"
        f"  key_prefix: tracker\n  record_exp: {s.tracker_retention_hours * 3600}\n"
        f"lock_store:\n  type: bot.lock_store.RedisLockStore\n{redis}\n  key_prefix: lock\n"
    )


def prepare(s: Settings) -> None:
    """Migrate the database; load the demo data when SUNSHINE_DEMO is on (idempotent). In
    production, refuse to go on while demo officers or WeChat bindings are in the database."""
    upgrade(s.database_url)
    if s.sunshine_demo:
        with unit_of_work(s.database_url) as session:
            load_demo(session, s.secret_key)
        with unit_of_work(s.database_url) as session:
            references = load_demo_references(session, s.secret_key, demo_faces_dir(s.demo_faces_dir))
        if references is not None:
            print(f"demo reference faces: {references.summary()}", flush=True)
    check_no_demo_in_production(s)


def check_no_demo_in_production(s: Settings) -> None:
    """In production, refuse while demo officers or demo WeChat bindings are in the (migrated) database."""
    if s.sunshine_env != "production":
        return
    engine = make_engine(s.database_url)
    try:
        if not inspect(engine).has_table(Officer.__tablename__):
            return  # not migrated yet: nothing loaded
    finally:
        engine.dispose()
    with unit_of_work(s.database_url) as session:
        left = demo_leftovers(session)
    if left:
        raise StartupError(*left)


def with_service_tokens(s: Settings) -> Settings:
    """The settings with RASA_TOKEN and ACTION_SERVER_TOKEN, random ones for this start when
    empty (development: production refuses empty ones before this)."""
    return replace(
        s,
        rasa_token=s.rasa_token or secrets.token_urlsafe(32),
        action_server_token=s.action_server_token or secrets.token_urlsafe(32),
    )


def child_env(s: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=s.redis_url,
        DATABASE_URL=s.database_url,
        RASA_TOKEN=s.rasa_token,
        ACTION_SERVER_TOKEN=s.action_server_token,
        PYTHONUNBUFFERED="1",
        RASA_TELEMETRY_ENABLED="false",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
        # rasa-sdk's action server listens on SANIC_HOST, by default every interface: anyone
        # who reached it could run the bot's actions (apply for a loan) with a forged tracker.
        # BIND_HOST: this machine only, unless a node of several serves the others (its token then).
        SANIC_HOST=s.bind_host,
        # Rasa's conversation lock outlives a Rasa or Redis that died mid-turn (60 s by default),
        # holding up that customer's next turn; a turn takes well under a second.
        TICKET_LOCK_LIFETIME="15",
        # `--demo`'s defaults reach the services: the web asks for the demo camera's fixed challenge.
        SUNSHINE_DEMO="1" if s.sunshine_demo else "0",
        FACE_CHALLENGE_DEMO_ORDER=s.face_challenge_demo_order,
    )
    return env


def _announce_when_ready(s: Settings, started: float) -> None:
    host = "127.0.0.1" if s.bind_host in ("0.0.0.0", "::") else s.bind_host  # noqa: S104  (a check, not a bind)
    url = f"http://{host}:{s.web_port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                print(
                    f"\n=== 阳光信贷助手 ready in {time.monotonic() - started:.0f} s ===\n"
                    f"  WeChat message URL  {url}/wechat\n"
                    f"  officer console     {url}/console"
                    f"{'   (demo login: officer01 / sunshine-demo)' if s.sunshine_demo else ''}\n"
                    f"  readiness           {url}/readyz    metrics {url}/metrics\n"
                    f"  API description     {url}/api/openapi.json\n"
                    f"  WeChat emulator     {s.wechat_api_base}/_emulator/messages?touser=o_demo_zhangjianguo\n"
                    f"  chat as a farmer:   make chat      (in another terminal)\n"
                    f"  stop everything:    Ctrl-C\n",
                    flush=True,
                )
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    print("=== not ready after 10 minutes: see the process output above ===", flush=True)


def _resolve_redis(s: Settings, private_port: int) -> tuple[Settings, int | None]:
    if s.redis_url:
        if not redis_server.reachable(s.redis_url, 2):
            raise StartupError(
                f"cannot reach REDIS_URL={Settings.public(s)['redis_url']}: start that Redis "
                "or leave REDIS_URL empty to have `make run` start a private one"
            )
        return s, None
    password = s.private_redis_password or secrets.token_urlsafe(24)
    s = replace(s, private_redis_password=password)
    return replace(s, redis_url=f"redis://:{password}@127.0.0.1:{private_port}/0"), private_port


def _count_restart(s: Settings, name: str) -> None:
    count(connect(s.redis_url), "service_restarts_total", service=name)


def run(s: Settings, private_port: int, roles: frozenset[str] | None = None) -> int:
    started = time.monotonic()
    s, private_redis = _resolve_redis(s, private_port)
    s = with_service_tokens(s)
    started_services = services(s, roles)
    check_ports(s, private_redis, roles)
    check_database(s)
    if any("rasa" in svc.roles for svc in started_services):
        check_model()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    endpoints = RUN_DIR / "endpoints.yml"  # holds the action server's token and Redis's password
    endpoints.touch(mode=0o600)
    endpoints.chmod(0o600)
    endpoints.write_text(rasa_endpoints(s), encoding="utf-8")
    manager = Supervisor(s.restart_backoff_s, on_restart=lambda name: _count_restart(s, name))
    env = child_env(s)
    if private_redis:
        manager.add_process(
            "redis",
            "exec " + shlex.join(redis_server.command(private_redis, RUN_DIR / "redis", s.private_redis_password)),
            env=dict(env, SUNSHINE_SERVICE="redis"),
            cwd=str(ROOT),
            ready=lambda: redis_server.reachable(s.redis_url, 0.2),
            before_prepare=True,
        )
        print(f"starting a private Redis at {Settings.public(s)['redis_url']} (REDIS_URL is empty)", flush=True)
    for svc in started_services:
        # `exec`: the service itself is the supervised process, not a shell around it.
        # SUNSHINE_SERVICE tells which service a process (and its children) belongs to.
        manager.add_process(
            svc.name,
            "exec " + shlex.join(svc.command),
            env=dict(env, SUNSHINE_SERVICE=svc.name),
            cwd=str(ROOT),
            before_prepare=not svc.uses_database,
        )
    if any("web" in svc.roles for svc in started_services):
        threading.Thread(target=_announce_when_ready, args=(s, started), daemon=True).start()
    # Redis, Rasa (loading its model, the longest start), the action server and the emulators start
    # while the database is migrated and the demo loaded; the web and the workers after that.
    manager.loop(prepare=lambda: prepare(s))
    return manager.returncode or 0


def load_settings(demo: bool, **where) -> Settings:
    """The settings (`where`: `load`'s env and dotenv); `demo` (`--demo`): SUNSHINE_DEMO on and, while it
    is on, FACE_CHALLENGE_DEMO_ORDER=DEMO_CHALLENGE_ORDER, each unless `.env` or the environment say."""
    if not demo:
        return load(**where)
    s = load(defaults={"SUNSHINE_DEMO": "1"}, **where)
    if not s.sunshine_demo:
        return s
    return load(defaults={"SUNSHINE_DEMO": "1", "FACE_CHALLENGE_DEMO_ORDER": DEMO_CHALLENGE_ORDER}, **where)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sunshine.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "prepare", "run"))
    parser.add_argument("--private-redis-port", type=int, default=int(os.environ.get("PRIVATE_REDIS_PORT", 6390)))
    parser.add_argument("--demo", action="store_true", help="SUNSHINE_DEMO on unless .env or the environment say")
    parser.add_argument("--roles", help=f"only these roles, comma-separated ({','.join(ROLES)}); default: all")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    try:
        s = load_settings(args.demo)
        problems = data_file_problems()
        if problems:
            raise StartupError(*problems)
        roles = parse_roles(args.roles) if args.roles is not None else None
        if args.command == "check":
            s, private = _resolve_redis(s, args.private_redis_port)
            check_ports(s, private, roles)
            check_database(s)
            check_no_demo_in_production(s)
            if any("rasa" in svc.roles for svc in services(s, roles)):
                check_model()
            print("configuration ok")
            return 0
        if args.command == "prepare":
            check_database(s)
            prepare(s)
            print("database migrated" + (" and demo data loaded" if s.sunshine_demo else ""))
            return 0
        return run(s, args.private_redis_port, roles)
    except (ConfigError, StartupError) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
