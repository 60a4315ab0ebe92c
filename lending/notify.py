"""Telling customers about their applications in WeChat: the notifier the
application service is given in the running processes."""

from __future__ import annotations

from conversation.tasks import Jobs
from sunshine.settings import Settings


class WeChatNotifier:
    """notify(openid, text): queue a customer-service message for the worker to deliver."""

    def __init__(self, settings: Settings):
        self.jobs = Jobs(settings)

    def __call__(self, openid: str, text: str) -> None:
        self.jobs.deliver(openid, [text])
