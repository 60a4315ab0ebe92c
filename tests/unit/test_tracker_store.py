"""bot/tracker_store.py: Rasa's Redis tracker store on a real Redis, written
without reading the whole tracker back unless another process wrote meanwhile."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
import redis
from rasa.core.lock_store import LockStore
from rasa.core.tracker_store import TrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.lock_store import RedisLockStore
from bot.tracker_store import RedisTrackerStore, continues
from sunshine.launcher import rasa_endpoints
from sunshine.settings import ROOT, Settings

DOMAIN = Domain.load(str(ROOT / "bot" / "domain.yml"))


@pytest.fixture
def store(redis_url) -> RedisTrackerStore:
    return RedisTrackerStore(DOMAIN, host=redis_url, record_exp=600, key_prefix="tracker")


def turn(tracker: DialogueStateTracker, text: str, answer: str) -> None:
    tracker.update(UserUttered(text, {"name": "ask_credit_line", "confidence": 0.9}))
    tracker.update(ActionExecuted("action_credit_line"))
    tracker.update(BotUttered(answer))
    tracker.update(ActionExecuted("action_listen"))


def stored(store: RedisTrackerStore, sender: str) -> dict:
    return json.loads(store.red.get(store.key_prefix + sender))


def test_turns_are_saved_without_reading_the_tracker_back(store, monkeypatch):
    rebuilt = []
    original = TrackerStore.deserialise_tracker
    monkeypatch.setattr(
        TrackerStore, "deserialise_tracker", lambda self, *a: (rebuilt.append(1), original(self, *a))[1]
    )
    tracker = DialogueStateTracker("o_farmer", DOMAIN.slots)
    for n in range(3):
        turn(tracker, f"我能借多少{n}", f"您的额度是{n}0万元")
        asyncio.run(store.save(tracker))

    assert rebuilt == []
    assert stored(store, "o_farmer") == tracker.as_dialogue().as_dict()
    assert 0 < store.red.ttl(store.key_prefix + "o_farmer") <= 600
    again = asyncio.run(store.retrieve_full_tracker("o_farmer"))
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in tracker.events]
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["我能借多少0", "我能借多少1", "我能借多少2"]


def test_events_written_meanwhile_by_another_process_are_kept(store):
    ours = DialogueStateTracker("o_farmer", DOMAIN.slots)
    turn(ours, "我能借多少", "您的额度是20万元")
    asyncio.run(store.save(ours))
    theirs = asyncio.run(store.retrieve_full_tracker("o_farmer"))
    theirs.update(SlotSet("customer_type", "farmer"))
    asyncio.run(store.save(theirs))

    turn(ours, "利息多少", "年利率4.35%")  # ours does not know their event
    asyncio.run(store.save(ours))

    events = stored(store, "o_farmer")["events"]
    assert [e["value"] for e in events if e["event"] == "slot"] == ["farmer"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["我能借多少", "利息多少"]


def test_continues_only_the_stored_events_followed_by_new_ones():
    a, b, c = {"event": "action", "name": "x"}, {"event": "user", "text": "y"}, {"event": "bot", "text": "z"}
    assert continues([a, b, c], [a, b]) and continues([a, b], [a, b]) and continues([a], [])
    assert not continues([a, c], [a, b]) and not continues([a], [a, b])


def test_the_launchers_endpoints_give_rasa_this_store(redis_url, tmp_path):
    path = tmp_path / "endpoints.yml"
    path.write_text(rasa_endpoints(replace(Settings(), redis_url=redis_url)), encoding="utf-8")

    created = create_tracker_store(read_endpoint_config(str(path), "tracker_store"), DOMAIN)

    assert type(created) is RedisTrackerStore
    assert created.record_exp == Settings().tracker_retention_hours * 3600 == 86400
    assert isinstance(created.red, redis.Redis) and created.red.ping()

    locks = LockStore.create(read_endpoint_config(str(path), "lock_store"))
    assert type(locks) is RedisLockStore and locks.key_prefix == "lock:lock:"
    locks.save_lock(LockStore.create_lock("o_farmer"))
    assert locks.get_lock("o_farmer").conversation_id == "o_farmer"
