"""Telling customers about their applications in WeChat: the notifier the
application service is given in the running processes."""

from __future__ import annotations

from sunshine.jobs import Jobs


class WeChatNotifier:
    """notify(openid, text): queue a customer-service message for the worker to deliver."""

    def __init__(self, jobs: Jobs):
        self.jobs = jobs

    def __call__(self, openid: str, text: str) -> None:
        self.jobs.deliver(openid, [text])
