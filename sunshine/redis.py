"""The shared Redis connection: one server (redis://, rediss://, unix://) or the
master a set of Sentinels names (redis+sentinel://, rediss+sentinel://)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
# The options a Sentinel URL may carry (?name=value): the Sentinels' own password, and the CA of a TLS one.
SENTINEL_OPTIONS = ("sentinel_password", "ssl_ca_certs")
SENTINEL_FORM = "redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER_NAME[/DB]"


@dataclass(frozen=True)
class SentinelTarget:
    """What a Sentinel URL names: the Sentinels, the master's service name, and how to talk to it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    tls: bool
    options: tuple[tuple[str, str], ...]


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def sentinel_target(url: str) -> SentinelTarget:
    """Parse `redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER_NAME[/DB][?OPTIONS]`
    (the scheme of the Redis-Sentinel-Url package and redisvl; ports default to 26379,
    `rediss+sentinel` is TLS to the Sentinels and the servers). ValueError saying what is wrong."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    sentinels = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":") if ":" in entry else (entry.strip(), "", "")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"Sentinel {entry!r} is not HOST or HOST:PORT; use {SENTINEL_FORM}")
        sentinels.append((host.strip("[]"), int(port or SENTINEL_PORT)))
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"name the master (and optionally the database number) after the Sentinels: {SENTINEL_FORM}")
    options = tuple(parse_qsl(parts.query))
    unknown = [name for name, _ in options if name not in SENTINEL_OPTIONS]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (a Sentinel URL takes {', '.join(SENTINEL_OPTIONS)})")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        service=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=parts.scheme.lower() == "rediss+sentinel",
        options=options,
    )


@lru_cache(maxsize=8)
def connect(url: str, socket_timeout: float | None = 10.0, decode_responses: bool = False) -> redis.Redis:
    """A client for `url`. A down Redis is noticed within 2 s (or `socket_timeout` if shorter); reads
    may block up to `socket_timeout` (longer than any BLPOP the caller makes; None for workers).
    Through Sentinels, every new connection goes to the master they name now: after a failover
    the next command after a failed one reaches the promoted replica."""
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": min(2.0, socket_timeout or 2.0),
        "health_check_interval": 30,
        "decode_responses": decode_responses,
    }
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = sentinel_target(url)
    extra = dict(target.options)
    tls: dict[str, Any] = {}
    if target.tls:
        tls = {"ssl": True, **({"ssl_ca_certs": extra["ssl_ca_certs"]} if "ssl_ca_certs" in extra else {})}
    sentinel = Sentinel(
        target.sentinels,
        # A Sentinel answers at once or is down: never wait on one as long as a worker's BLPOP.
        sentinel_kwargs={
            "socket_timeout": options["socket_connect_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
            "password": extra.get("sentinel_password"),
            **tls,
        },
    )
    return sentinel.master_for(
        target.service, db=target.db, username=target.username, password=target.password, **tls, **options
    )
