"""Exactly-once, in-time answers to WeChat messages.

WeChat waits 5 s for the HTTP answer and re-delivers a message up to three
times. The web process never calls the bot itself: it enqueues the message
for the worker and waits up to the budget for the answer.

Whoever decides first owns the delivery, atomically in Redis:
- the worker, when its answer is ready inside the budget, marks the message
  `passive` and hands the answer to the waiting web request, which returns
  it in the HTTP response;
- the web request, when the budget runs out, marks it `async`, answers
  `success`, and the worker then sends the answer through the
  customer-service message API.
A retry of a message already seen never reaches the bot. It waits, within
its own budget, for the first delivery's decision: the passive answer when
there is one (the first HTTP response may have come too late for WeChat,
which then reads only the retry's), else `success`. When the first request
died before deciding (its web worker was killed), the retry decides `async`
in its place, so that the worker's answer still goes out.

The worker's side is restart-safe: the bot's answer is kept under the message
key before it is delivered, and the chunks sent through the API are counted,
so a job run again after its worker died asks the bot nothing more and sends
only what was not sent yet.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

KEY_TTL_S = 24 * 3600
WECHAT_TEXT_LIMIT = 2048  # bytes per customer-service or passive text

# How often a retry looks for the first delivery's decision.
RETRY_POLL_S = 0.05

# KEYS: decided, result, bot. ARGV: answer json, ttl. Returns 1 when the worker wins
# (or won already, in an earlier run of the same job).
# `result` wakes the waiting web request; `bot` keeps the answer for WeChat's retries.
_CLAIM_PASSIVE = """
if redis.call('SET', KEYS[1], 'passive', 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
  return 1
end
if redis.call('GET', KEYS[1]) == 'passive' then
  return 1
end
return 0
"""


def _keys(message_key: str) -> dict[str, str]:
    base = f"wx:{message_key}"
    return {
        "seen": f"{base}:seen",
        "decided": f"{base}:decided",
        "result": f"{base}:result",
        "bot": f"{base}:bot",
        "answer": f"{base}:answer",
        "sent": f"{base}:sent",
        "asked": f"{base}:asked",
    }


def split_for_wechat(texts: list[str], limit: int = WECHAT_TEXT_LIMIT) -> list[str]:
    """Pack bot messages into as few WeChat texts as fit `limit` bytes, in order.

    Consecutive messages share one text (separated by a blank line) while
    they fit; a single message longer than the limit is cut at character
    boundaries.
    """
    pieces: list[str] = []
    for text in texts:
        while len(text.encode()) > limit:
            cut = limit
            while len(text[:cut].encode()) > limit:
                cut -= 1
            pieces.append(text[:cut])
            text = text[cut:]
        if text:
            pieces.append(text)
    packed: list[str] = []
    for piece in pieces:
        if packed and len((packed[-1] + "\n\n" + piece).encode()) <= limit:
            packed[-1] += "\n\n" + piece
        else:
            packed.append(piece)
    return packed


def bot_texts(bot_messages: list[dict]) -> list[str]:
    """The texts of Rasa's REST messages, images given as links."""
    texts = []
    for m in bot_messages:
        if m.get("text"):
            texts.append(m["text"])
        if m.get("image"):
            texts.append(m["image"])
    return texts


@dataclass(frozen=True)
class Outcome:
    """What the web request returns: a passive text, or nothing (`success`)."""

    passive_text: str | None
    duplicate: bool = False


class Relay:
    """The web side: de-duplicate, enqueue, wait within the budget."""

    def __init__(self, r: redis.Redis, jobs, budget_s: float):
        self.r = r
        self.jobs = jobs  # sunshine.jobs.Jobs or any object with answer() and deliver()
        self.budget_s = budget_s

    def handle(self, openid: str, text: str, message_key: str) -> Outcome:
        keys = _keys(message_key)
        if not self.r.set(keys["seen"], "1", nx=True, ex=KEY_TTL_S):
            return Outcome(self._answer_for_retry(keys), duplicate=True)
        self.jobs.answer(openid, text, message_key)
        got = self.r.blpop([keys["result"]], timeout=self.budget_s)
        if got is None and not self.r.set(keys["decided"], "async", nx=True, ex=KEY_TTL_S):
            # The worker won the race an instant before us: its answer is already pushed.
            got = self.r.blpop([keys["result"]], timeout=1)
        if got is None:
            return Outcome(None)
        chunks = split_for_wechat(json.loads(got[1]))
        if len(chunks) > 1:
            # A passive first part could arrive after the API sent the rest: send all, in order.
            self.jobs.deliver(openid, chunks)
        return Outcome(_passive(chunks))

    def _answer_for_retry(self, keys: dict[str, str]) -> str | None:
        """The passive answer of the first delivery, waiting for its decision within the budget."""
        deadline = time.monotonic() + self.budget_s
        while True:
            answer, decided = self.r.mget(keys["bot"], keys["decided"])
            if answer is not None:
                return _passive(split_for_wechat(json.loads(answer)))
            if decided is not None:
                return None  # answered through the API
            if time.monotonic() >= deadline:
                if self.r.set(keys["decided"], "async", nx=True, ex=KEY_TTL_S):
                    return None  # the first request is gone undecided: the API will carry the answer
                continue  # the worker decided an instant ago: read its answer
            time.sleep(RETRY_POLL_S)


def _passive(chunks: list[str]) -> str | None:
    """What goes back in the HTTP response: the answer when it fits one WeChat text."""
    return chunks[0] if len(chunks) == 1 else None


def seen_key(message_key: str) -> str:
    return _keys(message_key)["seen"]


def decide_async(r: redis.Redis, message_key: str) -> None:
    """No web request waits for this message's answer (it was held while Redis was down): the API carries
    it, even if a job claimed it for a web request that had already answered "please wait"."""
    r.set(_keys(message_key)["decided"], "async", ex=KEY_TTL_S)


def remembered_answer(r: redis.Redis, message_key: str) -> list[str] | None:
    """The bot's answer to this message when an earlier run of its job already asked the bot."""
    raw = r.get(_keys(message_key)["answer"])
    return None if raw is None else json.loads(raw)


def remember_answer(r: redis.Redis, message_key: str, texts: list[str]) -> None:
    r.set(_keys(message_key)["answer"], json.dumps(texts, ensure_ascii=False), ex=KEY_TTL_S)


def asked_key(message_key: str) -> str:
    """Set when the job asks the bot: a run again of the job reads the answer back instead."""
    return _keys(message_key)["asked"]


def sent_count_key(message_key: str) -> str:
    """Where the number of this answer's chunks already sent through the API is counted."""
    return _keys(message_key)["sent"]


def worker_claims_passive(r: redis.Redis, message_key: str, texts: list[str]) -> bool:
    """Called by the worker with the bot's answer: True when the web request will deliver it."""
    keys = _keys(message_key)
    return bool(
        r.eval(
            _CLAIM_PASSIVE,
            3,
            keys["decided"],
            keys["result"],
            keys["bot"],
            json.dumps(texts, ensure_ascii=False),
            KEY_TTL_S,
        )
    )
