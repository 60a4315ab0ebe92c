"""Rasa's Redis lock store on REDIS_URL, connected as every other process connects
(`sunshine.redis.connect`: one server, or the master Sentinel names now); endpoints.yml:
`type: bot.lock_store.RedisLockStore`. Same keys and format as Rasa's."""

from __future__ import annotations

from rasa.core import lock_store
from rasa.utils.endpoints import EndpointConfig

from sunshine.redis import connect


class RedisLockStore(lock_store.RedisLockStore):
    """Rasa's ticket locks in Redis; Rasa takes it as multi-worker safe (a RedisLockStore)."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        """`endpoint_config.url`: the Redis URL; `key_prefix` as Rasa's store takes it. (Rasa's
        __init__ is not called: it makes a client of one host and port.)"""
        self.red = connect(endpoint_config.url)
        self.key_prefix = lock_store.DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX
        if endpoint_config.kwargs.get("key_prefix"):
            self._set_key_prefix(endpoint_config.kwargs["key_prefix"])
