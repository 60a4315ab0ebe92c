"""Background jobs (RQ): ask the bot, deliver answers through the
customer-service message API.

Each customer's jobs go to one of `worker_processes` queues, chosen by their
openid, and each queue has one worker: a customer's messages are answered
and delivered in the order they came.
"""
from __future__ import annotations

import logging
import zlib
from datetime import timedelta
from functools import lru_cache

from rq import Queue

from clients.rasa import RasaClient, RasaUnavailable
from clients.wechat import WeChatApi, WeChatApiError, WeChatUnavailable
from conversation.relay import bot_texts, split_for_wechat, worker_claims_passive
from handoff.service import keep_customer_message, keep_undelivered, request_hand_off
from sunshine.db import unit_of_work
from sunshine.redis import connect
from sunshine.settings import Settings, load

log = logging.getLogger(__name__)
QUEUE = "replies"
BOT_UNAVAILABLE = "系统正在忙，请稍后再发一次；着急的话请回复“转人工”，客户经理会联系您。"
# Seconds before each new attempt when WeChat's API cannot be reached; then the officer is told.
DELIVERY_RETRY_DELAYS_S = (5, 30, 120)
FAILED_JOB_TTL_S = 7 * 24 * 3600


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    return load()


def queue_name(openid: str, partitions: int) -> str:
    """The queue (and so the worker) that handles this customer."""
    return partition_queue(zlib.crc32(openid.encode()) % partitions)


def partition_queue(partition: int) -> str:
    return f"{QUEUE}.{partition}"


class Jobs:
    """Enqueues the relay's work for the worker processes."""

    def __init__(self, settings: Settings):
        self.partitions = settings.worker_processes
        self.connection = connect(settings.redis_url)

    def _queue(self, openid: str) -> Queue:
        return Queue(queue_name(openid, self.partitions), connection=self.connection)

    def answer(self, openid: str, text: str, message_key: str) -> None:
        self._queue(openid).enqueue(answer_message, openid, text, message_key, job_timeout=120,
                                    result_ttl=0, failure_ttl=FAILED_JOB_TTL_S)

    def fetch_reports(self, application_id: int) -> None:
        """Query an application's credit reports in a worker (auth_flow.reports.fetch_job)."""
        self._queue(f"application:{application_id}").enqueue(
            "auth_flow.reports.fetch_job", application_id, job_timeout=300, result_ttl=0,
            failure_ttl=FAILED_JOB_TTL_S)

    def deliver(self, openid: str, chunks: list[str], attempt: int = 0, delay_s: float = 0) -> None:
        args = (deliver_texts, openid, chunks, attempt)
        options = dict(job_timeout=60, result_ttl=0, failure_ttl=FAILED_JOB_TTL_S)
        if delay_s:
            self._queue(openid).enqueue_in(timedelta(seconds=delay_s), *args, **options)
        else:
            self._queue(openid).enqueue(*args, **options)


def answer_message(openid: str, text: str, message_key: str, settings: Settings | None = None) -> None:
    """Ask the bot and hand its answer to the waiting web request, or send it."""
    settings = settings or current_settings()
    try:
        texts = bot_texts(rasa_client(settings.rasa_url).send(openid, text))
    except RasaUnavailable as exc:
        log.warning("bot unavailable for message %s: %s", message_key, exc)
        texts = [BOT_UNAVAILABLE]
        _hand_to_officer(settings, openid, text, message_key)
    if not texts:
        return
    if not worker_claims_passive(connect(settings.redis_url), message_key, texts):
        deliver_texts(openid, split_for_wechat(texts), settings=settings)


def _hand_to_officer(settings: Settings, openid: str, text: str, message_key: str) -> None:
    """The bot is down: the customer's officer gets the conversation and this message."""
    try:
        with unit_of_work(settings.database_url) as session:
            hand_off, _ = request_hand_off(session, openid, "bot_unavailable")
            keep_customer_message(session, hand_off, text, message_key)
    except Exception:  # the database is down too: the apology still goes out
        log.exception("could not hand message %s to an officer", message_key)


@lru_cache(maxsize=4)
def rasa_client(url: str) -> RasaClient:
    """One Rasa client (and kept-alive HTTP connection) per worker process."""
    return RasaClient(url)


@lru_cache(maxsize=4)
def wechat_api(settings: Settings):
    """One WeChat API client (and HTTP session) per worker process and settings."""
    return WeChatApi.from_settings(settings)


def deliver_texts(openid: str, chunks: list[str], attempt: int = 0, settings: Settings | None = None) -> None:
    """Send texts in order through the customer-service message API.

    Whatever WeChat refuses (45015 outside the 48-hour window, 45047 too many
    messages, ...) or cannot take after the retries is kept and put before
    the customer's officer: never dropped, never sent twice.
    """
    settings = settings or current_settings()
    api = wechat_api(settings)
    for i, chunk in enumerate(chunks):
        try:
            api.send_text(openid, chunk)
        except WeChatUnavailable as exc:
            if attempt < len(DELIVERY_RETRY_DELAYS_S):
                log.warning("WeChat unreachable, delivery to %s retried in %ss: %s", openid,
                            DELIVERY_RETRY_DELAYS_S[attempt], exc)
                Jobs(settings).deliver(openid, chunks[i:], attempt + 1, DELIVERY_RETRY_DELAYS_S[attempt])
            else:
                _keep_undelivered(settings, openid, chunks[i:], None)
            return
        except WeChatApiError as exc:
            _keep_undelivered(settings, openid, chunks[i:], exc.errcode)
            return


def _keep_undelivered(settings: Settings, openid: str, chunks: list[str], errcode: int | None) -> None:
    log.warning("%d message(s) to %s undelivered (errcode %s): kept for the officer", len(chunks), openid, errcode)
    with unit_of_work(settings.database_url) as session:
        keep_undelivered(session, openid, chunks, errcode)
