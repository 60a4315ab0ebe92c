"""Rasa's Redis tracker store, without reading the whole tracker back before
each write (endpoints.yml: `type: bot.tracker_store.RedisTrackerStore`).

Rasa 3.6's RedisTrackerStore.save reads the stored tracker, rebuilds every
event of it, replays the new tracker back to the stored one's last event and
compares the two, to merge in events another process may have written in
between. That is three passes over the whole conversation (every session of
the last 30 days) on every turn: 17 ms at 100 events, 70 ms at 500, on top of
the read at the start of the turn. Here the stored events are compared as
JSON with the start of the tracker being written; only when they differ
(someone else wrote) does Rasa's own merge run. Same key, same format.

Its Redis is REDIS_URL, connected as every other process connects
(`sunshine.redis.connect`): one server or, through Sentinel, the current
master (Rasa 3.6's own Redis stores take one host and port only).
"""

from __future__ import annotations

import json
from typing import Any

from rasa.core import tracker_store
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from sunshine.redis import connect


def continues(events: list[dict[str, Any]], stored: list[dict[str, Any]]) -> bool:
    """Whether `events` are the `stored` events followed by new ones."""
    return len(stored) <= len(events) and events[: len(stored)] == stored


class RedisTrackerStore(tracker_store.RedisTrackerStore):
    """Stores conversation history in Redis, as Rasa's does."""

    def __init__(
        self,
        domain: Domain,
        host: str,
        event_broker: EventBroker | None = None,
        record_exp: float | None = None,
        key_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`host`: the Redis URL (endpoints.yml's `url`)."""
        # Not Rasa's RedisTrackerStore.__init__: it makes a client of one host and port.
        tracker_store.TrackerStore.__init__(self, domain, event_broker, **kwargs)
        self.red = connect(host, decode_responses=True)
        self.record_exp = record_exp
        self.key_prefix = tracker_store.DEFAULT_REDIS_TRACKER_STORE_KEY_PREFIX
        if key_prefix:
            self._set_key_prefix(key_prefix)

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        key = self.key_prefix + tracker.sender_id
        stored = self.red.get(key)
        dialogue = tracker.as_dialogue().as_dict()
        if stored is not None and not continues(dialogue["events"], json.loads(stored).get("events") or []):
            await super().save(tracker, timeout)  # written meanwhile: Rasa merges
            return
        await self.stream_events(tracker)
        self.red.set(key, json.dumps(dialogue), ex=timeout or self.record_exp)
