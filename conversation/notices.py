"""The notices the bank sends on its own (a party's authorization request, each
application decision, the disbursement, due dates): one policy, one place.

`deliver_notice` (a job: sunshine.jobs.Jobs.notice, queued by lending.notify.WeChatNotifier)
stores the notice (`notice_deliveries`) and tries the channels in order:

1. a customer-service message, when the person wrote within 48 hours (`mark_inbound`
   remembers each message and event in Redis); a 45015 (window closed) or 45047 (too
   many messages) goes on to the next channel at once;
2. a mini-program subscription message, when the person (`Customer.mp_openid`) accepted
   the kind's template (conversation.subscriptions); a 43101 means not accepted;
3. an Official Account template message;
4. when all refuse, the officer (a hand-off holding the text, as for any undelivered
   message): nothing is lost.

Which channel carried the notice, and why the ones before it did not, is recorded. When
WeChat cannot be reached the notice is tried again later, then goes to the officer.
The templates and their keyword fields are in `notice_templates.yml` (NOTICE_TEMPLATES_FILE).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis as redis_lib
from sqlalchemy import select

from clients.wechat import WeChatApi, WeChatApiError, WeChatUnavailable
from conversation import subscriptions
from conversation.tasks import DELIVERY_RETRY_DELAYS_S
from handoff.service import keep_undelivered
from sunshine.clock import full_time, utcnow
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs, current_settings, per_process
from sunshine.models import Customer, NoticeDelivery
from sunshine.redis import connect
from sunshine.settings import ROOT, Settings
from sunshine.yaml_files import read_yaml

log = logging.getLogger(__name__)

WINDOW_S = 48 * 3600  # WeChat's customer-service window after the person's last message
CHANNEL_NAMES = {
    "customer_service": "客服消息",
    "subscribe": "订阅消息",
    "template": "模板消息",
    "officer": "转客户经理",
}
# WeChat's keyword types and their longest values (characters); thing and name are cut with "…".
KEYWORD_LIMITS = {
    "thing": 20,
    "name": 10,
    "phrase": 5,
    "symbol": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "amount": 14,
    "phone_number": 17,
    "car_number": 8,
    "time": 32,
    "date": 32,
}
KEYWORD = re.compile(r"([a-z_]+)(\d+)")


# -- the 48-hour window --------------------------------------------------------------
def _window_key(openid: str) -> str:
    return f"sunshine:wechat:last_inbound:{openid}"


def mark_inbound(r: redis_lib.Redis, openid: str) -> None:
    """The person just wrote (or tapped the menu, followed, scanned): their window is open 48 hours."""
    try:
        r.set(_window_key(openid), int(utcnow().replace(tzinfo=timezone.utc).timestamp()), ex=WINDOW_S)
    except redis_lib.RedisError as exc:  # the notices then try the other channels first: none is lost
        log.warning("last inbound time not recorded (Redis: %s)", exc)


def within_window(r: redis_lib.Redis, openid: str) -> bool:
    try:
        return bool(r.exists(_window_key(openid)))
    except redis_lib.RedisError:
        return True  # unknown: try the customer-service message; a 45015 moves on at once


# -- the templates -------------------------------------------------------------------
class TemplatesError(ValueError):
    """The templates file is malformed: the message says where."""


@dataclass(frozen=True)
class TemplateSpec:
    template_id: str
    data: dict[str, str]  # keyword -> the value that fills it
    page: str = ""


@dataclass(frozen=True)
class NoticeKind:
    title: str
    subscribe: TemplateSpec | None = None
    template: TemplateSpec | None = None


def _spec(where: str, raw: Any) -> TemplateSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("template_id"), str) or not raw["template_id"]:
        raise TemplatesError(f"{where}: needs a template_id")
    data = raw.get("data")
    if not isinstance(data, dict) or not data:
        raise TemplatesError(f"{where}: needs data (keyword: value)")
    for keyword, source in data.items():
        m = KEYWORD.fullmatch(str(keyword))
        if m is None or m.group(1) not in KEYWORD_LIMITS:
            raise TemplatesError(f"{where}: {keyword} is not a WeChat keyword (thing1, amount2, phrase3, ...)")
        if not isinstance(source, str) or not source:
            raise TemplatesError(f"{where}: {keyword} needs the name of its value")
    return TemplateSpec(raw["template_id"], {str(k): v for k, v in data.items()}, str(raw.get("page") or ""))


def load_templates(path: Path) -> dict[str, NoticeKind]:
    """The notice kinds in a templates file; TemplatesError when it is malformed."""
    raw = read_yaml(path)
    kinds = raw.get("kinds") if isinstance(raw, dict) else None
    if not isinstance(kinds, dict) or "notice" not in kinds:
        raise TemplatesError(f"{path}: needs `kinds`, with a `notice` kind")
    out = {}
    for name, spec in kinds.items():
        if not isinstance(spec, dict) or not spec.get("title"):
            raise TemplatesError(f"{path}: kind {name} needs a title")
        out[str(name)] = NoticeKind(
            str(spec["title"]),
            _spec(f"{path}: {name}.subscribe", spec.get("subscribe")),
            _spec(f"{path}: {name}.template", spec.get("template")),
        )
    return out


@lru_cache(maxsize=4)
def templates(path: str) -> dict[str, NoticeKind]:
    return load_templates(Path(path))


def templates_path(settings: Settings) -> str:
    path = Path(settings.notice_templates_file)
    return str(path if path.is_absolute() else ROOT / path)


def notice_kind(settings: Settings, kind: str) -> NoticeKind:
    """The templates of `kind` (the `notice` kind's for a kind the file does not list)."""
    kinds = templates(templates_path(settings))
    return kinds.get(kind) or kinds["notice"]


def keyword_value(keyword: str, value: Any) -> str:
    """`value` as WeChat takes it for `keyword`: amounts in yuan, cut to the keyword's limit."""
    kind = KEYWORD.fullmatch(keyword).group(1)  # type: ignore[union-attr]  # checked when loaded
    text = f"{value}元" if kind == "amount" and isinstance(value, int) else str(value).strip()
    limit = KEYWORD_LIMITS[kind]
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if kind in ("thing", "name") else text[:limit]


def fill(spec: TemplateSpec, values: dict[str, Any]) -> dict[str, dict[str, str]] | None:
    """The template's `data` from the notice's values; None when one it needs is missing."""
    if any(values.get(source) in (None, "") for source in spec.data.values()):
        return None
    return {keyword: {"value": keyword_value(keyword, values[source])} for keyword, source in spec.data.items()}


# -- delivery ------------------------------------------------------------------------
@dataclass
class _Notice:
    id: int
    openid: str
    mp_openid: str | None
    kind: str
    text: str
    link: str | None
    values: dict[str, Any]
    tried: list[dict[str, Any]] = field(default_factory=list)

    def refused(self, channel: str, errcode: int | None = None, reason: str = "") -> None:
        self.tried.append({"channel": channel, "errcode": errcode, "reason": reason})


def deliver_notice(
    openid: str,
    text: str,
    kind: str = "notice",
    application_id: int | None = None,
    link: str | None = None,
    fields: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int:
    """Store a notice to the Official Account user `openid` and send it (`send_notice`); returns its id."""
    settings = settings or current_settings()
    with unit_of_work(settings.database_url) as session:
        customer = session.scalar(select(Customer).where(Customer.wechat_openid == openid))
        notice = NoticeDelivery(
            kind=kind,
            openid=openid,
            customer_id=customer.id if customer is not None else None,
            application_id=application_id,
            text=text,
            link=link,
            fields=fields or {},
            status="queued",
            attempts=[],
        )
        session.add(notice)
        session.flush()
        notice_id = notice.id
    send_notice(notice_id, settings=settings)
    return notice_id


def send_notice(notice_id: int, attempt: int = 0, settings: Settings | None = None) -> str | None:
    """Send a stored notice by the first channel that takes it; returns that channel
    (`officer` when none did), None when it will be tried again (WeChat unreachable)."""
    settings = settings or current_settings()
    with unit_of_work(settings.database_url) as session:
        row = session.get(NoticeDelivery, notice_id)
        if row is None or row.status != "queued":
            return row.channel if row is not None else None
        customer = session.get(Customer, row.customer_id) if row.customer_id is not None else None
        kind = notice_kind(settings, row.kind)
        notice = _Notice(
            row.id,
            row.openid,
            customer.mp_openid if customer is not None else None,
            row.kind,
            row.text,
            row.link,
            {
                "title": kind.title,
                "text": row.text,
                "time": full_time(row.created_at),
                "application_id": row.application_id,
                **row.fields,
            },
        )
    api: WeChatApi = per_process(WeChatApi.from_settings, settings)
    try:
        channel = _first_taker(settings, api, kind, notice)
    except WeChatUnavailable as exc:
        if attempt < len(DELIVERY_RETRY_DELAYS_S):
            log.warning(
                "WeChat unreachable, notice %s tried again in %ss: %s", notice_id, DELIVERY_RETRY_DELAYS_S[attempt], exc
            )
            Jobs(settings).retry_notice(notice.openid, notice_id, attempt + 1, DELIVERY_RETRY_DELAYS_S[attempt])
            return None
        notice.refused("wechat", None, "unreachable")
        channel = None
    return _record(settings, notice, channel)


def _first_taker(settings: Settings, api: WeChatApi, kind: NoticeKind, notice: _Notice) -> str | None:
    """Try the channels in order; the first that takes the notice, or None."""
    if not within_window(connect(settings.redis_url), notice.openid):
        notice.refused("customer_service", None, "outside_window")
    elif _sent(notice, "customer_service", lambda: api.send_text(notice.openid, notice.text)):
        return "customer_service"
    spec = kind.subscribe
    if spec is None or not notice.mp_openid:
        notice.refused("subscribe", None, "no_template" if spec is None else "no_mini_program")
    else:
        data = fill(spec, notice.values)
        with unit_of_work(settings.database_url) as session:
            accepted = subscriptions.accepted(session, notice.mp_openid, spec.template_id)
        if data is None:
            notice.refused("subscribe", None, "missing_field")
        elif not accepted:
            notice.refused("subscribe", None, "not_accepted")
        else:
            page = spec.page.format_map({"application_id": notice.values.get("application_id") or ""})
            mp_openid = notice.mp_openid
            sent = _sent(
                notice, "subscribe", lambda: api.send_subscribe_message(mp_openid, spec.template_id, data, page)
            )
            with unit_of_work(settings.database_url) as session:
                # A one-time acceptance is used by the send; 43101: WeChat says it is not accepted.
                (subscriptions.use if sent else subscriptions.refused)(session, mp_openid, spec.template_id)
            if sent:
                return "subscribe"
    template = kind.template
    data = fill(template, notice.values) if template is not None else None
    if template is None or data is None:
        notice.refused("template", None, "no_template" if template is None else "missing_field")
    elif _sent(notice, "template", lambda: api.send_template(notice.openid, template.template_id, data, notice.link)):
        return "template"
    return None


def _sent(notice: _Notice, channel: str, send) -> bool:
    """Send by one channel: True when WeChat took it; a refusal is recorded (unreachable: raised)."""
    try:
        send()
    except WeChatUnavailable:
        raise
    except WeChatApiError as exc:
        log.info("notice %s not taken as %s: %s", notice.id, channel, exc)
        notice.refused(channel, exc.errcode)
        return False
    return True


def _record(settings: Settings, notice: _Notice, channel: str | None) -> str:
    """Record the channel that carried the notice; none did: it goes to the officer."""
    channel = channel or "officer"
    with unit_of_work(settings.database_url) as session:
        if channel == "officer":
            errcodes = [t["errcode"] for t in notice.tried if t["errcode"] is not None]
            keep_undelivered(session, notice.openid, [notice.text], errcodes[-1] if errcodes else None)
        row = session.get(NoticeDelivery, notice.id)
        if row is not None:
            row.attempts = notice.tried
            row.delivered_at = utcnow()
            row.status, row.channel = ("to_officer" if channel == "officer" else "delivered"), channel
    log.info("notice %s (%s) carried by %s", notice.id, notice.kind, channel)
    return channel
