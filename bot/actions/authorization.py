"""Credit-report authorization in the conversation: what it is, who must give
it, a link (and QR code) for each party of the customer's application, and
who has and has not authorized yet. The rules are auth_flow's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth_flow.identity import page_id
from auth_flow.notices import send_requests, validity
from auth_flow.progress import missing_consents, progress_text
from auth_flow.qr import authorization_url
from auth_flow.tokens import locked_message, locked_requests, reissue_for_application
from bot.actions.common import BankAction, applicant, database, settings
from lending.catalog import products_offered
from lending.notify import WeChatNotifier
from lending.parties import LABELS, ROLES
from sunshine.jobs import Jobs
from sunshine.models import Authorization, Customer, LoanApplication, utcnow
from sunshine.protect import mask_name

REQUESTED_BY = "bot"
EXPLAIN = (
    "征信授权就是您同意银行查一次您的征信报告，只用于这笔贷款审批。"
    "不用跑网点：点开链接，核对信息、刷脸、点同意，几秒钟就好。"
)
REISSUE_WORDS = ("重新", "再发", "过期", "没收到", "失效", "打不开")
QUESTION_WORDS = ("意思", "是啥", "是什么", "干啥", "干嘛", "为啥", "为什么", "咋弄", "怎么弄", "咋办", "怎么办")


def _waiting_application(session: Session, customer: Customer) -> LoanApplication | None:
    return session.scalar(
        select(LoanApplication)
        .where(LoanApplication.customer_id == customer.id, LoanApplication.status == "awaiting_authorization")
        .order_by(LoanApplication.id.desc())
        .limit(1)
    )


def _links_pending(session: Session, application: LoanApplication) -> bool:
    """Every party still to authorize holds a link that works (or is locked: no link until an officer releases it)."""
    missing = set(missing_consents(session, application)) - {
        a.party_role for a in locked_requests(session, application)
    }
    live = {
        a.party_role
        for a in session.scalars(
            select(Authorization).where(
                Authorization.application_id == application.id,
                Authorization.status == "pending",
                Authorization.expires_at > utcnow(),
            )
        )
    }
    return missing <= live


class ActionStartAuthorization(BankAction):
    """authorize_credit_report, and right after an application is submitted."""

    def name(self) -> str:
        return "action_start_authorization"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events = [SlotSet("party_role", None)] if tracker.get_slot("party_role") else []
        cfg = settings()
        ttl = timedelta(seconds=cfg.authorization_ttl_s)
        text_said = tracker.latest_message.get("text") or ""
        qr_images: list[tuple[str, str]] = []  # (token, expires_at) of the QR codes to send as images
        with database(cfg) as session:
            customer = applicant(session, tracker)
            if customer is None:
                dispatcher.utter_message(text=EXPLAIN + "授权要先申请贷款：回复“我要贷款”，核对身份后就能办。")
                return events
            application = _waiting_application(session, customer)
            if application is None:
                dispatcher.utter_message(text=self._before_applying(session, customer))
                return events
            if _links_pending(session, application) and not any(w in text_said for w in REISSUE_WORDS):
                asked_what = any(w in text_said for w in QUESTION_WORDS)
                dispatcher.utter_message(
                    text=(EXPLAIN if asked_what else "")
                    + "".join(locked_message(a.party_role, a.party_name) for a in locked_requests(session, application))
                    + progress_text(session, application)
                    + "链接已经发过了；没收到或过期了，回复“重新发授权链接”。"
                )
                return events
            out = reissue_for_application(
                session, application, REQUESTED_BY, ttl, daily_limit=cfg.auth_reissues_per_day
            )
            lines = [EXPLAIN] + [held.message for held in out.held]
            for item in out.issued:
                auth, url = item.authorization, authorization_url(cfg.public_base_url, item.token)
                qr = f"{cfg.public_base_url.rstrip('/')}/api/authorizations/{item.token}/qr.png"
                if auth.party_role == "applicant":
                    lines.append(f"您本人的授权链接（{validity(ttl)}，请不要转给别人）：\n{url}")
                    continue
                label = LABELS[auth.party_role]
                lines.append(
                    f"请把这个链接转给{label}{mask_name(auth.party_name)}（身份证{page_id(auth.party_id_masked)}）本人打开，"
                    f"或让TA扫二维码（{validity(ttl)}，二维码图片随后发给您）：\n{url}\n二维码：{qr}"
                )
                qr_images.append((item.token, auth.expires_at.isoformat()))
            # The other parties get their links in WeChat once this commits (the applicant's is in this answer).
            others = [i for i in out.issued if i.authorization.party_role != "applicant"]
            send_requests(session, application, others, WeChatNotifier(Jobs(cfg)), cfg.public_base_url, ttl)
            lines.append(progress_text(session, application))
        if qr_images:
            jobs = Jobs(cfg)
            for token, expires_at in qr_images:  # queued after this answer, on the same customer's queue
                jobs.qr_image(tracker.sender_id, token, expires_at)
        dispatcher.utter_message(text="\n".join(lines))
        return events

    @staticmethod
    def _before_applying(session: Session, customer: Customer) -> str:
        parties = {role for p in products_offered(session, customer) for role in p.authorizing_parties}
        who = "、".join(LABELS[r] for r in ROLES if r in parties)
        return (
            f"{EXPLAIN}按您能办的产品，可能需要授权的人：{who}（有担保人的产品才要担保人）。"
            "您现在没有等待授权的贷款申请：回复“我要贷款”，申请提交后我马上把授权链接发给您和家人。"
        )
