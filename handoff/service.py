"""Hand-off rules: one open hand-off per customer, routed to their officer,
everything written while it is open kept for the officer; who may see, claim,
transfer, answer and close it; and the WeCom notices about it (new, deadline
near, overdue), stored here and sent by the background jobs (handoff.jobs)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clients.wechat import OUT_OF_RESPONSE_WINDOW
from lending.customers import by_openid
from lending.tags import labelled
from sunshine.clock import customer_time
from sunshine.models import ConversationMessage, Customer, Follower, HandOff, Officer, OfficerNotice, audit, utcnow

REASONS = (
    "customer_request",
    "complaint",
    "not_understood",
    "above_auto_limit",
    "authorization_locked",
    "contract_locked",
    "face_review",
    "bot_unavailable",
    "message_undelivered",
)
REASON_LABELS = {
    "customer_request": "客户要求转人工",
    "complaint": "客户不满意",
    "not_understood": "机器人两次没听懂",
    "above_auto_limit": "超过自动审批额度",
    "authorization_locked": "授权被锁定",
    "contract_locked": "合同签署被锁定",
    "face_review": "人脸核验待人工核对",
    "bot_unavailable": "机器人暂时不可用",
    "message_undelivered": "消息未能送达",
}
# Higher first in the officers' queue.
PRIORITIES = {
    "authorization_locked": 3,
    "contract_locked": 3,
    "face_review": 2,
    "complaint": 2,
    "above_auto_limit": 2,
    "message_undelivered": 2,
    "bot_unavailable": 2,
    "customer_request": 1,
    "not_understood": 1,
}
DEFAULT_DEADLINE = timedelta(minutes=30)
# WeChat refuses a customer-service text longer than 2048 bytes (errcode 45002).
REPLY_MAX_BYTES = 2048
SUPERVISOR = "supervisor"


class HandOffError(ValueError):
    """A hand-off request that cannot be carried out; the message is for the officer."""


class NotAllowed(HandOffError):
    """The officer may not see or act on this hand-off."""


def open_hand_off(session: Session, openid: str) -> HandOff | None:
    return session.scalar(select(HandOff).where(HandOff.openid == openid, HandOff.status != "closed"))


def customer_hand_off(session: Session, customer: Customer) -> HandOff | None:
    """The customer's open hand-off, else their latest closed one (whichever WeChat it came from)."""
    return session.scalar(
        select(HandOff)
        .where(HandOff.customer_id == customer.id)
        .order_by(HandOff.status == "closed", HandOff.id.desc())
        .limit(1)
    )


def responsible_officer_id(session: Session, openid: str, customer: Customer | None) -> int | None:
    """The customer's own officer from the credit file, else the officer of the
    service station whose code they scanned, else none (the branch queue). An officer
    whose account is stopped is passed over."""
    if customer is not None and customer.officer is not None and customer.officer.active:
        return customer.officer.id
    follower = session.get(Follower, openid)
    station_officer = follower.station.officer if follower is not None and follower.station is not None else None
    if station_officer is not None and station_officer.active:
        return station_officer.id
    return None


def request_hand_off(
    session: Session,
    openid: str,
    reason: str,
    summary: dict | None = None,
    deadline: timedelta = DEFAULT_DEADLINE,
    application_id: int | None = None,
) -> tuple[HandOff, bool]:
    """Open a hand-off for this WeChat user (about `application_id`, if any), or return the
    one already open. The summary carries the customer's tags as they were then.

    Returns (hand_off, created).
    """
    if reason not in REASONS:
        raise HandOffError(f"unknown hand-off reason {reason!r}")
    existing = open_hand_off(session, openid)
    if existing is not None:
        return existing, False
    customer = by_openid(session, openid)
    tags = labelled(session, customer.id) if customer else []
    hand_off = HandOff(
        openid=openid,
        customer_id=customer.id if customer else None,
        officer_id=responsible_officer_id(session, openid, customer),
        reason=reason,
        summary={**(summary or {}), "tags": tags} if tags else summary or {},
        priority=PRIORITIES[reason],
        deadline=utcnow() + deadline,
        application_id=application_id,
    )
    try:
        with session.begin_nested():
            session.add(hand_off)
    except IntegrityError:
        # Another request opened one an instant ago (the unique index on open hand-offs).
        existing = open_hand_off(session, openid)
        if existing is None:  # and closed it since: nothing to join
            raise
        return existing, False
    audit(session, "bot", "hand_off.requested", "hand_off", hand_off.id, reason=reason)
    _notice_new(session, hand_off)
    return hand_off, True


def keep_customer_message(session: Session, hand_off: HandOff, body: str, wechat_msg_key: str) -> bool:
    """Store what the customer wrote while an officer has the conversation.

    Returns False when this WeChat delivery was stored already (a retry). A message
    stored before without a hand-off (held while Redis was down) joins this one.
    """
    message = ConversationMessage(
        openid=hand_off.openid,
        hand_off_id=hand_off.id,
        direction="inbound",
        author="customer",
        body=body,
        wechat_msg_key=wechat_msg_key,
        status="received",
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        update_ = (
            update(ConversationMessage)
            .where(ConversationMessage.wechat_msg_key == wechat_msg_key, ConversationMessage.hand_off_id.is_(None))
            .values(hand_off_id=hand_off.id, status="received")
            .execution_options(synchronize_session=False)
        )
        taken = cast(CursorResult, session.execute(update_))  # an UPDATE's result counts its rows
        return taken.rowcount == 1
    return True


def customer_message_count(session: Session, hand_off: HandOff) -> int:
    return session.scalar(
        select(func.count())
        .select_from(ConversationMessage)
        .where(ConversationMessage.hand_off_id == hand_off.id, ConversationMessage.direction == "inbound")
    )


def keep_undelivered(
    session: Session, openid: str, texts: list[str], errcode: int | None, author: str = "bot"
) -> HandOff:
    """WeChat refused to deliver `texts` (45015 outside the 48-hour window, 45047
    too many messages, or unreachable): keep them and put them before the
    customer's officer through a hand-off."""
    hand_off, _ = request_hand_off(session, openid, "message_undelivered", summary={"errcode": errcode})
    for text in texts:
        session.add(
            ConversationMessage(
                openid=openid,
                hand_off_id=hand_off.id,
                direction="outbound",
                author=author,
                body=text,
                status="undelivered",
                errcode=errcode,
            )
        )
    audit(session, author, "message.undelivered", "hand_off", hand_off.id, errcode=errcode, count=len(texts))
    return hand_off


def close_hand_off(session: Session, hand_off: HandOff, actor: str, note: str = "") -> None:
    """The officer ends the hand-off: the customer's next message goes to the bot again."""
    if hand_off.status == "closed":
        raise HandOffError("这个会话已经结束了")
    hand_off.status = "closed"
    hand_off.closed_at = utcnow()
    audit(session, actor, "hand_off.closed", "hand_off", hand_off.id, note=note)


# -- officers and their hand-offs ----------------------------------------------


def actor_of(officer: Officer) -> str:
    return f"officer:{officer.username}"


def visible_to(officer: Officer):
    """The condition on HandOff an officer sees: their own and the branch queue's; a supervisor all."""
    if officer.role == SUPERVISOR:
        return HandOff.id.is_not(None)
    return or_(HandOff.officer_id == officer.id, HandOff.officer_id.is_(None))


def check_access(officer: Officer, hand_off: HandOff) -> None:
    """Raise NotAllowed unless the officer may open this hand-off."""
    if officer.role != SUPERVISOR and hand_off.officer_id not in (None, officer.id):
        raise NotAllowed("这是其他客户经理的会话，只有主管可以查看")


def _check_open(hand_off: HandOff, doing: str) -> None:
    if hand_off.status == "closed":
        raise HandOffError(f"这个会话已经结束，不能再{doing}；客户再找客户经理时会有新的会话")


def queue_rows(session: Session, officer: Officer, only_officer_id: int | None = None) -> list:
    """Open hand-offs the officer sees, most urgent first (priority, then deadline), as plain rows
    (the queue may hold thousands): id, openid, priority, status, reason, deadline, summary,
    customer_name, officer_username, officer_name."""
    query = (
        select(
            HandOff.id,
            HandOff.openid,
            HandOff.priority,
            HandOff.status,
            HandOff.reason,
            HandOff.deadline,
            HandOff.summary,
            Customer.name.label("customer_name"),
            Officer.username.label("officer_username"),
            Officer.display_name.label("officer_name"),
        )
        .outerjoin(Customer, Customer.id == HandOff.customer_id)
        .outerjoin(Officer, Officer.id == HandOff.officer_id)
        .where(HandOff.status != "closed", visible_to(officer))
        .order_by(HandOff.priority.desc(), HandOff.deadline, HandOff.id)
    )
    if only_officer_id is not None:
        query = query.where(HandOff.officer_id == only_officer_id)
    return session.execute(query).all()


def claim(session: Session, hand_off: HandOff, officer: Officer) -> None:
    """The officer takes the conversation (from the branch queue, or their own)."""
    check_access(officer, hand_off)
    _check_open(hand_off, "接手")
    if hand_off.status == "claimed" and hand_off.officer_id == officer.id:
        return
    previous = hand_off.officer_id
    hand_off.officer_id = officer.id
    hand_off.status = "claimed"
    audit(session, actor_of(officer), "hand_off.claimed", "hand_off", hand_off.id, previous_officer_id=previous)


def transfer(session: Session, hand_off: HandOff, officer: Officer, to_officer_id: int, note: str = "") -> Officer:
    """Give the conversation to another officer, who is told in WeCom; returns them."""
    check_access(officer, hand_off)
    _check_open(hand_off, "转交")
    target = session.get(Officer, to_officer_id)
    if target is None or not target.active:
        raise HandOffError("没有这位客户经理，或其账号已停用")
    if target.id == hand_off.officer_id:
        raise HandOffError(f"这个会话已经由{target.display_name}负责")
    previous = hand_off.officer_id
    hand_off.officer_id = target.id
    hand_off.status = "open"
    audit(
        session,
        actor_of(officer),
        "hand_off.transferred",
        "hand_off",
        hand_off.id,
        from_officer_id=previous,
        to_officer_id=target.id,
        note=note,
    )
    _notice_new(session, hand_off)
    return target


def officer_reply(session: Session, hand_off: HandOff, officer: Officer, text: str) -> ConversationMessage:
    """Keep the officer's reply, to be sent by the background job (handoff.jobs); an
    unclaimed hand-off is claimed by whoever answers it first."""
    check_access(officer, hand_off)
    _check_open(hand_off, "回复")
    text = text.strip()
    if not text:
        raise HandOffError("请先写好回复内容")
    if len(text.encode("utf-8")) > REPLY_MAX_BYTES:
        raise HandOffError("回复太长了，微信一条最多约680个汉字，请分成几条发送")
    if hand_off.status == "open":
        claim(session, hand_off, officer)
    message = ConversationMessage(
        openid=hand_off.openid,
        hand_off_id=hand_off.id,
        direction="outbound",
        author=actor_of(officer),
        body=text,
        status="queued",
    )
    session.add(message)
    session.flush()
    audit(session, actor_of(officer), "message.queued", "conversation_message", message.id, hand_off_id=hand_off.id)
    return message


CLOSING_NOTE = "本次人工服务已结束，感谢您的耐心。还有问题可以直接发消息问我；需要客户经理时，回复“转人工”。"


def close_by_officer(session: Session, hand_off: HandOff, officer: Officer, note: str = "") -> ConversationMessage:
    """The officer ends the conversation; returns the closing note to send to the customer.
    The bot answers the customer's next message, its conversation state as it was."""
    check_access(officer, hand_off)
    close_hand_off(session, hand_off, actor_of(officer), note)
    message = ConversationMessage(
        openid=hand_off.openid,
        hand_off_id=hand_off.id,
        direction="outbound",
        author=actor_of(officer),
        body=CLOSING_NOTE,
        status="queued",
    )
    session.add(message)
    session.flush()
    return message


def resend(session: Session, message: ConversationMessage, officer: Officer) -> str:
    """Offer an undelivered message again: as a template message when WeChat's 48-hour window
    has closed (45015), else as a customer-service message. Returns the new status."""
    if message.status != "undelivered":
        raise HandOffError("这条消息不需要重发")
    hand_off = session.get(HandOff, message.hand_off_id) if message.hand_off_id is not None else None
    if hand_off is not None:
        check_access(officer, hand_off)
    message.status = "template_queued" if message.errcode == OUT_OF_RESPONSE_WINDOW else "queued"
    audit(session, actor_of(officer), "message.resend", "conversation_message", message.id, sent_as=message.status)
    return message.status


def conversation(session: Session, openid: str) -> list[ConversationMessage]:
    """Every message kept for this WeChat user (customer, officers, undelivered bot answers), oldest first."""
    return list(
        session.scalars(
            select(ConversationMessage).where(ConversationMessage.openid == openid).order_by(ConversationMessage.id)
        )
    )


# -- WeCom notices ---------------------------------------------------------------


def _supervisors(session: Session) -> list[Officer]:
    return list(session.scalars(select(Officer).where(Officer.role == SUPERVISOR, Officer.active.is_(True))))


def _add_notice(session: Session, hand_off: HandOff, officer: Officer, kind: str, text: str) -> bool:
    """Store a notice to be sent, once per hand-off, officer and kind; False if there was one."""
    if not officer.wecom_userid:
        return False
    try:
        with session.begin_nested():
            session.add(OfficerNotice(hand_off_id=hand_off.id, officer_id=officer.id, kind=kind, text=text))
    except IntegrityError:
        return False
    return True


def _who(hand_off: HandOff) -> str:
    return hand_off.customer.name if hand_off.customer else "未绑定客户"


def _notice_new(session: Session, hand_off: HandOff) -> None:
    session.flush()
    session.refresh(hand_off)
    officers = [hand_off.officer] if hand_off.officer else _supervisors(session)
    where = "" if hand_off.officer else "（支行队列，请分派）"
    for officer in officers:
        _add_notice(
            session,
            hand_off,
            officer,
            "new",
            f"新的转人工会话{where}：{_who(hand_off)}，{REASON_LABELS[hand_off.reason]}，"
            f"请在{customer_time(hand_off.deadline)}前处理。",
        )


def _noticed(kind: str):
    return select(OfficerNotice.id).where(OfficerNotice.hand_off_id == HandOff.id, OfficerNotice.kind == kind).exists()


def sweep_deadlines(session: Session, warn_within: timedelta, now=None) -> int:
    """Warn officers of hand-offs whose deadline is near, and tell the supervisors of
    those overdue (once each); returns how many notices were stored."""
    now = now or utcnow()
    stored = 0
    near = session.scalars(
        select(HandOff).where(
            HandOff.status != "closed",
            HandOff.deadline >= now,
            HandOff.deadline < now + warn_within,
            ~_noticed("deadline"),
        )
    )
    for hand_off in near:
        for officer in [hand_off.officer] if hand_off.officer else _supervisors(session):
            stored += _add_notice(
                session,
                hand_off,
                officer,
                "deadline",
                f"转人工会话快到时限了：{_who(hand_off)}，{REASON_LABELS[hand_off.reason]}，"
                f"请在{customer_time(hand_off.deadline)}前处理。",
            )
    overdue = session.scalars(
        select(HandOff).where(HandOff.status != "closed", HandOff.deadline < now, ~_noticed("overdue"))
    )
    for hand_off in overdue:
        owner = hand_off.officer.display_name if hand_off.officer else "支行队列"
        for supervisor in _supervisors(session):
            if _add_notice(
                session,
                hand_off,
                supervisor,
                "overdue",
                f"转人工会话已超时：{_who(hand_off)}（{owner}），{REASON_LABELS[hand_off.reason]}，"
                f"时限{customer_time(hand_off.deadline)}。",
            ):
                stored += 1
                audit(session, "system", "hand_off.escalated", "hand_off", hand_off.id, to_officer_id=supervisor.id)
    return stored
