"""The failover forms of REDIS_URL (Sentinel) and DATABASE_URL (libpq's list of hosts): parsed,
checked, hidden in logs. The failovers themselves: tests/faults/test_failover.py."""

from __future__ import annotations

import pytest
from redis.connection import SSLConnection
from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection
from sqlalchemy.engine import make_url

from sunshine.db import engine_url
from sunshine.redis import SentinelTarget, connect, sentinel_target
from sunshine.settings import ConfigError, Settings, load


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database():
    assert sentinel_target("redis+sentinel://:p%40ss@10.0.0.1,10.0.0.2:26380/sunshine/2") == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
        service="sunshine",
        db=2,
        username=None,
        password="p@ss",
        tls=False,
        options=(),
    )
    tls = sentinel_target("rediss+sentinel://app:pw@[::1]:26379/m?sentinel_password=sp&ssl_ca_certs=/etc/ca.pem")
    assert tls.sentinels == (("::1", 26379),) and tls.db == 0 and tls.username == "app" and tls.tls
    assert dict(tls.options) == {"sentinel_password": "sp", "ssl_ca_certs": "/etc/ca.pem"}


@pytest.mark.parametrize(
    "url, words",
    [
        ("redis+sentinel://h1:x/m", "Sentinel 'h1:x' is not HOST or HOST:PORT"),
        ("redis+sentinel://h1,,h2/m", "Sentinel '' is not HOST"),
        ("redis+sentinel://h1/", "name the master"),
        ("redis+sentinel://h1/m/zero", "name the master (and optionally the database number)"),
        ("redis+sentinel://h1/m?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("sentinel://h1/m", "must start with redis://, rediss://, unix:// or redis+sentinel://"),
    ],
)
def test_a_malformed_redis_url_stops_start_up_saying_what_is_wrong(tmp_path, url, words):
    with pytest.raises(ConfigError) as exc:
        load(env={"REDIS_URL": url}, dotenv=tmp_path / "none")
    assert words in str(exc.value)


def test_passwords_in_redis_and_database_urls_are_hidden():
    public = Settings(
        redis_url="redis+sentinel://:secret1@h1,h2/m/0?sentinel_password=secret2",
        database_url="postgresql://app:secret3@h1:5432,h2:5432/db?target_session_attrs=read-write",
    ).public()
    assert "secret" not in public["redis_url"] + public["database_url"]
    assert public["redis_url"] == "redis+sentinel://:***@h1,h2/m/0?sentinel_password=***"


def test_libpq_lists_of_hosts_become_the_form_sqlalchemy_parses():
    url = engine_url("postgresql://app:pw@h1:5432,h2/sunshine?target_session_attrs=read-write&sslmode=require")
    assert url == "postgresql://app:pw@/sunshine?host=h1:5432&host=h2&target_session_attrs=read-write&sslmode=require"
    parsed = make_url(url)
    assert parsed.query == {
        "host": ("h1:5432", "h2"),
        "target_session_attrs": "read-write",
        "sslmode": "require",
    }
    args = parsed.get_dialect()().create_connect_args(parsed)[1]
    assert args["host"] == "h1,h2" and args["port"] == "5432," and args["target_session_attrs"] == "read-write"
    for unchanged in ("postgresql://app@h1:5432/db", "sqlite:///var/sunshine.db", "postgresql://u@/db?host=h1&host=h2"):
        assert engine_url(unchanged) == unchanged


def test_a_tls_sentinel_url_makes_tls_clients_of_the_sentinels_and_the_master():
    client = connect("rediss+sentinel://app:pw@s1,s2/main/3?sentinel_password=sp&ssl_ca_certs=/etc/ca.pem")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "main"
    assert pool.connection_class is SentinelManagedSSLConnection
    master = {k: pool.connection_kwargs[k] for k in ("db", "username", "password", "ssl_ca_certs")}
    assert master == {"db": 3, "username": "app", "password": "pw", "ssl_ca_certs": "/etc/ca.pem"}
    sentinels = [s.connection_pool for s in pool.sentinel_manager.sentinels]
    assert [(p.connection_kwargs["host"], p.connection_kwargs["port"]) for p in sentinels] == [
        ("s1", 26379),
        ("s2", 26379),
    ]
    assert all(p.connection_class is SSLConnection and p.connection_kwargs["password"] == "sp" for p in sentinels)
