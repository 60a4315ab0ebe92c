"""Telling customers about their applications in WeChat: the notifier the
application service is given in the running processes."""

from __future__ import annotations

from typing import Any

from sunshine.jobs import Jobs


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
