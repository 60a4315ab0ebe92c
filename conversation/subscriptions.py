"""The subscription-message templates each person accepted in the mini-program
(wx.requestSubscribeMessage), as WeChat's message push reports them
(webhooks/wxa_push.py), and their use by the notices (conversation/notices.py).

- `subscribe_msg_popup_event`: the person answered the pop-up; each `accept` of a one-time
  template (一次性订阅) allows one more message, `reject` allows none.
- `subscribe_msg_change_event`: the person changed the template in the mini-program's
  settings: `reject` takes back what was left, `accept` lets earlier acceptances stand.
- `subscribe_msg_sent_event`: WeChat's report of a sending; an error (e.g. the person
  turned the template off) marks the template not accepted.
A send uses one acceptance; WeChat's 43101 (not accepted) sets what is left to none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from sunshine.models import WxaSubscription, audit

# Each subscribe event, and the element holding its templates in the XML form of the push.
EVENT_ELEMENTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}


def _subscription(session: Session, mp_openid: str, template_id: str) -> WxaSubscription | None:
    return session.scalar(
        select(WxaSubscription).where(
            WxaSubscription.mp_openid == mp_openid, WxaSubscription.template_id == template_id
        )
    )


def record_event(session: Session, mp_openid: str, event: str, items: Iterable[Mapping[str, str]]) -> int:
    """Record one pushed subscribe event (its `List` items: TemplateId, SubscribeStatusString or
    ErrorCode); returns how many templates it changed."""
    if event not in EVENT_ELEMENTS:
        raise ValueError(f"not a subscribe event: {event}")
    changed = 0
    for item in items:
        template_id = str(item.get("TemplateId") or "").strip()
        if not template_id:
            continue
        if event == "subscribe_msg_sent_event" and str(item.get("ErrorCode", "0")) == "0":
            continue  # delivered: the send used its acceptance already (use())
        row = _subscription(session, mp_openid, template_id)
        if row is None:
            row = WxaSubscription(mp_openid=mp_openid, template_id=template_id, status="reject", remaining=0)
            session.add(row)
        if event == "subscribe_msg_sent_event":
            row.status, row.remaining = "reject", 0
        else:
            status = str(item.get("SubscribeStatusString") or "").strip()
            if status == "accept":
                row.status = "accept"
                if event == "subscribe_msg_popup_event":
                    row.remaining += 1
            else:  # reject, or ban (WeChat barred the template)
                row.status, row.remaining = status or "reject", 0
        changed += 1
        audit(session, "wechat", f"wxa.{event}", "wxa_subscription", template_id, status=row.status)
    return changed


def accepted(session: Session, mp_openid: str, template_id: str) -> bool:
    """Whether a subscription message of `template_id` may be sent to this person now."""
    row = _subscription(session, mp_openid, template_id)
    return row is not None and row.status == "accept" and row.remaining > 0


def use(session: Session, mp_openid: str, template_id: str) -> None:
    """One message was sent: one acceptance is used up."""
    row = _subscription(session, mp_openid, template_id)
    if row is not None and row.remaining > 0:
        row.remaining -= 1


def refused(session: Session, mp_openid: str, template_id: str) -> None:
    """WeChat answered 43101: the person has not accepted this template (any more)."""
    row = _subscription(session, mp_openid, template_id)
    if row is not None:
        row.status, row.remaining = "reject", 0
