"""What becomes of each message and event WeChat posts: the service behind `/wechat`.

Takes a message parsed by wechatpy and returns the text of the passive reply,
or None for `success`. Text goes to the bot through the relay, or to the
officer while a hand-off is open; events follow, unfollow and route QR-code
scans; media get a helpful answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy.exc import SQLAlchemyError

from auth_flow.qr import authorization_url
from auth_flow.tokens import AuthorizationError, find_by_token
from conversation.followers import followed, station_by_code, unfollowed
from conversation.inbox import hold
from conversation.notices import mark_inbound
from conversation.relay import Relay
from handoff.service import customer_message_count, keep_customer_message, open_hand_off
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.metrics import count
from sunshine.models import HandOff, utcnow
from sunshine.protect import mask_name
from sunshine.qrcodes import AUTHORIZATION, STATION, parse_scene
from sunshine.settings import Settings

log = logging.getLogger(__name__)

NOT_UNDERSTOOD_MEDIA = "我现在只能看懂文字和语音。请直接打字或发语音告诉我您想办什么，比如“我想贷款”“我能贷多少”。"
VOICE_NOT_RECOGNISED = "这条语音没有听清，麻烦您打字告诉我，或者再说一遍。"
PASSED_TO_OFFICER = "您的消息已转给客户经理，请稍候，回复会直接发到这里。"
UNKNOWN_MENU = "这个菜单暂时用不了。您可以直接发消息问我，比如“我能贷多少”“我想贷款”，找人工请回复“转人工”。"
UNKNOWN_QR_CODE = "这个二维码已经失效了。有需要请直接发消息给我，或回复“转人工”。"
# Sent to the bot as an intent when someone follows the account.
GREET_INTENT = "/greet"
# Menu buttons (CLICK keys, set up in the WeChat admin page) and the intent each one asks the bot.
MENU_INTENTS = {
    "APPLY_LOAN": "/apply_loan",
    "CREDIT_LINE": "/ask_credit_line",
    "PRODUCTS": "/ask_products",
    "APPLICATION_STATUS": "/check_application_status",
    "REPAYMENT": "/ask_repayment",
    "HUMAN": "/request_human",
}
# What the officer sees in place of media the customer sent during a hand-off.
MEDIA_LABELS = {
    "image": "[图片]",
    "voice": "[语音]",
    "video": "[视频]",
    "shortvideo": "[小视频]",
    "location": "[位置]",
    "link": "[链接]",
}


def message_key(message) -> str:
    """What identifies one message across WeChat's retries: MsgId, or sender and time for events.

    Raises ValueError when they are missing or malformed (wechatpy converts fields lazily).
    """
    try:
        if message.type == "event":
            return f"{message.source}:{message.create_time.timestamp():.0f}"
        if not message.id:
            raise ValueError("message without MsgId")
        return str(message.id)
    except (TypeError, OverflowError, OSError) as exc:
        raise ValueError(f"bad CreateTime or MsgId: {type(exc).__name__}") from None


def _media_description(message) -> str:
    label = MEDIA_LABELS.get(message.type, f"[{message.type}]")
    detail = {"image": "image", "link": "url", "location": "label"}.get(message.type)
    value = getattr(message, detail, "") if detail else ""
    return f"{label} {value}".strip()


@dataclass(frozen=True)
class ForOfficer:
    """A message kept for the officer; `reply` is the passive reply (None: `success`)."""

    reply: str | None


@dataclass
class Inbound:
    settings: Settings
    redis: redis.Redis
    jobs: Jobs  # sunshine.jobs.Jobs, or any object with answer() and deliver()

    def handle(self, message) -> str | None:
        if not (message.type == "event" and message.event == "unsubscribe"):
            mark_inbound(self.redis, message.source)  # WeChat's 48-hour window opens (conversation.notices)
        if message.type == "text":
            return self._words(message, message.content)
        if message.type == "voice":
            text = (message.recognition or "").strip()
            if text:
                return self._words(message, text)
            return self._for_officer_or(message, _media_description(message), VOICE_NOT_RECOGNISED)
        if message.type == "event":
            return self._event(message)
        return self._for_officer_or(message, _media_description(message), NOT_UNDERSTOOD_MEDIA)

    # -- words: to the officer during a hand-off, else to the bot --------------
    def _words(self, message, text: str) -> str | None:
        kept = self._for_officer(message, text)
        if kept is not None:
            return kept.reply
        return self._ask_bot(message.source, text, message_key(message))

    def _for_officer_or(self, message, description: str, otherwise: str) -> str | None:
        kept = self._for_officer(message, description)
        return otherwise if kept is None else kept.reply

    def _for_officer(self, message, body: str) -> ForOfficer | None:
        """Keep the message for the officer when a hand-off is open (returns the reply),
        or None when the bot has the conversation."""
        try:
            with unit_of_work(self.settings.database_url) as session:
                hand_off: HandOff | None = open_hand_off(session, message.source)
                if hand_off is None:
                    return None
                stored = keep_customer_message(session, hand_off, body, message_key(message))
                first = stored and customer_message_count(session, hand_off) == 1
            return ForOfficer(PASSED_TO_OFFICER if first and hand_off.status == "open" else None)
        except SQLAlchemyError:
            log.exception("hand-off state unavailable for message %s", message_key(message))
        # Without the database the hand-off state is unknown: the bot answers, nothing is dropped.
        return None

    def _ask_bot(self, openid: str, text: str, key: str) -> str | None:
        try:
            relay = Relay(self.redis, self.jobs, self.settings.wechat_reply_budget_s)
            outcome = relay.handle(openid, text, key)
        except redis.RedisError as exc:
            log.error("redis unavailable for message %s: %s", key, exc)
            return hold(self.settings, openid, text, key)
        count(
            self.redis,
            "wechat_replies_total",
            delivery="duplicate" if outcome.duplicate else ("passive" if outcome.passive_text else "async"),
        )
        return outcome.passive_text

    # -- events ---------------------------------------------------------------
    def _event(self, message) -> str | None:
        event = message.event
        if event in ("subscribe", "subscribe_scan", "scan"):
            return self._followed(message, getattr(message, "scene_id", None))
        if event == "unsubscribe":
            with unit_of_work(self.settings.database_url) as session:
                unfollowed(session, message.source)
            return None
        if event == "click":
            intent = MENU_INTENTS.get(message.key)
            return self._ask_bot(message.source, intent, message_key(message)) if intent else UNKNOWN_MENU
        return None  # VIEW opens a page; location reports and the rest need no answer

    def _followed(self, message, raw_scene: str | None) -> str | None:
        scene = parse_scene(raw_scene)
        with unit_of_work(self.settings.database_url) as session:
            if scene is not None and scene.kind == AUTHORIZATION:
                followed(session, message.source)
                return self._authorization_link(session, scene.value)
            station = station_by_code(session, scene.value) if scene and scene.kind == STATION else None
            followed(session, message.source, station)
            if station is not None:
                officer = station.officer.display_name if station.officer else None
                return (
                    f"欢迎来到{station.name}！"
                    + (f"您的客户经理是{officer}，" if officer else "")
                    + "有事可以直接发消息问我，比如“我能贷多少”“我想贷款”“利息咋算”；"
                    "要找客户经理，回复“转人工”。"
                )
        if raw_scene and message.event == "scan":
            return UNKNOWN_QR_CODE
        return self._ask_bot(message.source, GREET_INTENT, message_key(message))

    def _authorization_link(self, session, token: str) -> str:
        try:
            auth = find_by_token(session, token)
        except AuthorizationError as exc:
            return str(exc)
        minutes = max(1, int((auth.expires_at - utcnow()) / timedelta(minutes=1)))
        return (
            f"{mask_name(auth.party_name)}您好，这是查询您个人征信的授权请求，用途：{auth.purpose}。"
            f"请点开链接，核对信息、刷脸后确认授权：{authorization_url(self.settings.public_base_url, token)}"
            f"\n链接{minutes}分钟内有效，只能用一次。不是您本人办理请不要操作。"
        )
