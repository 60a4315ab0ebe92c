"""The conversation's background jobs (RQ, enqueued by sunshine.jobs.Jobs): ask the
bot, deliver answers through the customer-service message API."""

from __future__ import annotations

import logging
from functools import lru_cache

import requests

from clients.rasa import RasaClient, RasaUnavailable
from clients.wechat import WeChatApi, WeChatApiError, WeChatUnavailable
from conversation.relay import (
    KEY_TTL_S,
    asked_key,
    bot_texts,
    remember_answer,
    remembered_answer,
    sent_count_key,
    split_for_wechat,
    worker_claims_passive,
)
from handoff.service import keep_customer_message, keep_undelivered, request_hand_off
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, current_settings, per_process
from sunshine.redis import connect
from sunshine.settings import Settings

log = logging.getLogger(__name__)
BOT_UNAVAILABLE = "智能助手暂时出了点问题，您的消息已转给客户经理，请稍等，客户经理会在这里回复您。"
# What the customer reads when the bot gave no answer at all: never left without one.
NOT_ANSWERED = "抱歉，这条消息我没能处理好，麻烦您再说一遍；着急的话请回复“转人工”。"
# Seconds before each new attempt when WeChat's API cannot be reached; then the officer is told.
DELIVERY_RETRY_DELAYS_S = (5, 30, 120)


def answer_message(openid: str, text: str, message_key: str, settings: Settings | None = None) -> None:
    """Ask the bot and hand its answer to the waiting web request, or send it.

    Safe to run again after the worker died in the middle: the bot is asked
    once per message (unless the run again comes while the bot is still in the
    middle of the first asking), and only chunks not yet sent are sent.
    """
    settings = settings or current_settings()
    r = connect(settings.redis_url)
    texts = remembered_answer(r, message_key)
    if texts is None:
        try:
            texts = bot_texts(
                _ask_once(r, rasa_client(settings.rasa_url, settings.rasa_token), openid, text, message_key)
            )
            if not texts and not _action_server_up(settings):
                # Rasa carries on without the custom action's events: the answer was lost.
                raise RasaUnavailable("no answer: the action server is down")
            if not texts:  # e.g. a custom action failed while the action server restarted
                log.warning("the bot gave no answer to message %s", message_key)
                texts = [NOT_ANSWERED]
        except RasaUnavailable as exc:
            log.warning("bot unavailable for message %s: %s", message_key, exc)
            texts = [BOT_UNAVAILABLE]
            _hand_to_officer(settings, openid, text, message_key)
        remember_answer(r, message_key, texts)
    if not worker_claims_passive(r, message_key, texts):
        deliver_texts(openid, split_for_wechat(texts), settings=settings, progress_key=sent_count_key(message_key))


def _ask_once(r, rasa: RasaClient, openid: str, text: str, message_key: str) -> list[dict]:
    """The bot's answer to the message: asked now, or, when an earlier run of the job asked it
    and died before keeping the answer, read back from the conversation's tracker (the message
    went with its key as metadata)."""
    if r.exists(asked_key(message_key)):
        answer = rasa.answer_to(openid, message_key)
        if answer is not None:
            log.warning("message %s: the bot's answer read back from its tracker, not asked again", message_key)
            return answer
    r.set(asked_key(message_key), 1, ex=KEY_TTL_S)
    return rasa.send(openid, text, {"message_key": message_key})


def _action_server_up(settings: Settings) -> bool:
    try:
        return requests.get(settings.action_server_url.rstrip("/") + "/health", timeout=2).ok
    except requests.RequestException:
        return False


def _hand_to_officer(settings: Settings, openid: str, text: str, message_key: str) -> None:
    """The bot is down: the customer's officer gets the conversation and this message."""
    try:
        with unit_of_work(settings.database_url) as session:
            hand_off, _ = request_hand_off(session, openid, "bot_unavailable")
            keep_customer_message(session, hand_off, text, message_key)
    except Exception:  # the database is down too: the apology still goes out
        log.exception("could not hand message %s to an officer", message_key)


@lru_cache(maxsize=4)
def rasa_client(url: str, token: str = "") -> RasaClient:
    """One Rasa client (and kept-alive HTTP connection) per worker process."""
    return RasaClient(url, token=token)


def wechat_api(settings: Settings) -> WeChatApi:
    """The worker process's WeChat API client for these settings."""
    return per_process(WeChatApi.from_settings, settings)


def deliver_texts(
    openid: str, chunks: list[str], attempt: int = 0, settings: Settings | None = None, progress_key: str | None = None
) -> None:
    """Send texts in order through the customer-service message API.

    Whatever WeChat refuses (45015 outside the 48-hour window, 45047 too many
    messages, ...) or cannot take after the retries is kept and put before
    the customer's officer: never dropped, never sent twice. With
    `progress_key`, the chunks sent are counted in Redis and a second run
    (the job again after its worker died) skips them.
    """
    settings = settings or current_settings()
    api = wechat_api(settings)
    r = connect(settings.redis_url) if progress_key else None
    done = int(r.get(progress_key) or 0) if r is not None and progress_key else 0
    for i, chunk in enumerate(chunks):
        if i < done:
            continue
        try:
            api.send_text(openid, chunk)
        except WeChatUnavailable as exc:
            if attempt < len(DELIVERY_RETRY_DELAYS_S):
                log.warning(
                    "WeChat unreachable, delivery to %s retried in %ss: %s",
                    openid,
                    DELIVERY_RETRY_DELAYS_S[attempt],
                    exc,
                )
                Jobs(settings).deliver(openid, chunks[i:], attempt + 1, DELIVERY_RETRY_DELAYS_S[attempt])
            else:
                _keep_undelivered(settings, openid, chunks[i:], None)
            _mark_sent(r, progress_key, len(chunks))  # the rest is the retry job's (or the officer's) now
            return
        except WeChatApiError as exc:
            _keep_undelivered(settings, openid, chunks[i:], exc.errcode)
            _mark_sent(r, progress_key, len(chunks))
            return
        _mark_sent(r, progress_key, i + 1)


def _mark_sent(r, progress_key: str | None, sent: int) -> None:
    if r is not None:
        r.set(progress_key, sent, ex=KEY_TTL_S)


def _keep_undelivered(settings: Settings, openid: str, chunks: list[str], errcode: int | None) -> None:
    log.warning("%d message(s) to %s undelivered (errcode %s): kept for the officer", len(chunks), openid, errcode)
    with unit_of_work(settings.database_url) as session:
        keep_undelivered(session, openid, chunks, errcode)
