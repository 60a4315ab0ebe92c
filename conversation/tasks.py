"""Background jobs (RQ): ask the bot, deliver answers through the
customer-service message API."""
from __future__ import annotations

import logging
from functools import lru_cache

from rq import Queue

from clients.rasa import RasaClient, RasaUnavailable
from conversation.relay import bot_texts, split_for_wechat, worker_claims_passive
from sunshine.redis import connect
from sunshine.settings import Settings, load

log = logging.getLogger(__name__)
QUEUE = "replies"
BOT_UNAVAILABLE = "系统正在忙，请稍后再发一次；着急的话请回复“转人工”，客户经理会联系您。"


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    return load()


class Jobs:
    """Enqueues the relay's work for the worker processes."""

    def __init__(self, settings: Settings):
        self.queue = Queue(QUEUE, connection=connect(settings.redis_url))

    def answer(self, openid: str, text: str, message_key: str) -> None:
        self.queue.enqueue(answer_message, openid, text, message_key, job_timeout=120,
                           result_ttl=0, failure_ttl=7 * 24 * 3600)

    def deliver(self, openid: str, chunks: list[str]) -> None:
        self.queue.enqueue(deliver_texts, openid, chunks, job_timeout=60, result_ttl=0,
                           failure_ttl=7 * 24 * 3600)


def answer_message(openid: str, text: str, message_key: str, settings: Settings | None = None) -> None:
    """Ask the bot and hand its answer to the waiting web request, or send it."""
    settings = settings or current_settings()
    try:
        texts = bot_texts(RasaClient(settings.rasa_url).send(openid, text))
    except RasaUnavailable as exc:
        log.warning("bot unavailable for message %s: %s", message_key, exc)
        texts = [BOT_UNAVAILABLE]
    if not texts:
        return
    if not worker_claims_passive(connect(settings.redis_url), message_key, texts):
        deliver_texts(openid, split_for_wechat(texts), settings)


@lru_cache(maxsize=4)
def wechat_api(settings: Settings):
    """One WeChat API client (and HTTP session) per worker process and settings."""
    from clients.wechat import WeChatApi

    return WeChatApi.from_settings(settings)


def deliver_texts(openid: str, chunks: list[str], settings: Settings | None = None) -> None:
    """Send texts in order through the customer-service message API."""
    api = wechat_api(settings or current_settings())
    for chunk in chunks:
        api.send_text(openid, chunk)
