"""Telling customers about their applications in WeChat (the notifier the application
service is given in the running processes), and officers in WeCom."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from sunshine.jobs import Jobs, after_commit, current_settings
from sunshine.models import Officer, audit


class WeChatNotifier:
    """notify(openid, text): queue a notice the worker sends by the first channel that takes it
    (conversation.notices: customer-service message inside WeChat's 48-hour window, else a
    mini-program subscription message or an Official Account template message, else the officer).

    Optional details: `kind` (which templates carry it, conversation/notice_templates.yml),
    `application_id` (shown in the application's history), `link` (what a template message
    opens) and `fields` (the values the kind's templates need: product, amount, status, ...)."""

    def __init__(self, jobs: Jobs):
        self.jobs = jobs

    def __call__(
        self,
        openid: str,
        text: str,
        *,
        kind: str = "notice",
        application_id: int | None = None,
        link: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.jobs.notice(openid, text, kind, application_id, link, fields)


class OfficerNotifier(Protocol):
    def __call__(self, session: Session, officer_id: int | None, text: str) -> None:
        """Tell officer `officer_id` (None: the customer has no officer) `text`, in `session`'s transaction."""


def notify_officer(session: Session, officer_id: int | None, text: str) -> None:
    """Record the notice and, after the commit, send it to the officer in WeCom."""
    audit(session, "system", "officer.notified", "officer", officer_id if officer_id is not None else "-", text=text)
    officer = session.get(Officer, officer_id) if officer_id is not None else None
    if officer is not None and officer.wecom_userid:
        userid = officer.wecom_userid
        # A failure to queue is logged: the notice is in the audit log and the application's history.
        after_commit(session, lambda: Jobs(current_settings()).tell_officer(userid, text))
