"""Background jobs (RQ): the queues, the one enqueuer, and acting after a commit.

Each customer's jobs go to one of `worker_processes` queues, chosen by their
openid, and each queue has one worker (`python -m conversation.worker`): a
customer's messages are answered and delivered in the order they came, and an
officer's replies reach them in order with the bot's answers.

The job functions live in their domain packages and are named here by dotted
path, so this module imports none of them. A job runs in a worker with
`current_settings()` and the clients `per_process` keeps for it.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Hashable
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypeVar

from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from sunshine.models import ConversationMessage, OfficerNotice
from sunshine.redis import connect
from sunshine.settings import Settings, load

log = logging.getLogger(__name__)
QUEUE = "replies"
FAILED_JOB_TTL_S = 7 * 24 * 3600
# Seconds a job may run before RQ stops it.
ANSWER_TIMEOUT_S, DELIVERY_TIMEOUT_S, REPORTS_TIMEOUT_S = 120, 60, 300

T = TypeVar("T")


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """The settings of this worker process (read once from the environment)."""
    return load()


@lru_cache(maxsize=8)
def per_process(factory: Callable[[Settings], Any], settings: Settings) -> Any:
    """One client made by `factory(settings)` (and its kept-alive HTTP session) per process and settings."""
    return factory(settings)


def queue_name(key: str, partitions: int) -> str:
    """The queue (and so the worker) that handles this customer (or other key, e.g. `application:7`)."""
    return partition_queue(zlib.crc32(key.encode()) % partitions)


def partition_queue(partition: int) -> str:
    return f"{QUEUE}.{partition}"


class Jobs:
    """Enqueues work for the worker processes, each job on its customer's queue."""

    def __init__(self, settings: Settings):
        self.partitions = settings.worker_processes
        self.connection = connect(settings.redis_url)

    def enqueue(self, key: str, job: str, *args, timeout_s: int = DELIVERY_TIMEOUT_S, delay_s: float = 0) -> None:
        """Run the job function at dotted path `job` with `args` on `key`'s queue (after `delay_s`)."""
        queue = Queue(queue_name(key, self.partitions), connection=self.connection)
        # The description (what RQ logs and keeps) names the job only: its arguments are customer
        # texts and bot answers, which RQ would otherwise write into every worker's log.
        options: dict[str, Any] = dict(
            job_timeout=timeout_s, result_ttl=0, failure_ttl=FAILED_JOB_TTL_S, description=job
        )
        if delay_s:
            queue.enqueue_in(timedelta(seconds=delay_s), job, *args, **options)
        else:
            queue.enqueue(job, *args, **options)

    # -- the conversation ---------------------------------------------------------
    def answer(self, openid: str, text: str, message_key: str) -> None:
        """Ask the bot and deliver its answer (conversation.tasks.answer_message)."""
        self.enqueue(openid, "conversation.tasks.answer_message", openid, text, message_key, timeout_s=ANSWER_TIMEOUT_S)

    def deliver(self, openid: str, chunks: list[str], attempt: int = 0, delay_s: float = 0) -> None:
        """Send texts as customer-service messages (conversation.tasks.deliver_texts)."""
        self.enqueue(openid, "conversation.tasks.deliver_texts", openid, chunks, attempt, delay_s=delay_s)

    def notice(
        self,
        openid: str,
        text: str,
        kind: str = "notice",
        application_id: int | None = None,
        link: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """A notice the bank sends on its own, by the first channel that takes it (conversation.notices)."""
        self.enqueue(
            openid, "conversation.notices.deliver_notice", openid, text, kind, application_id, link, fields or {}
        )

    def retry_notice(self, openid: str, notice_id: int, attempt: int, delay_s: float) -> None:
        self.enqueue(openid, "conversation.notices.send_notice", notice_id, attempt, delay_s=delay_s)

    # -- the hand-off -------------------------------------------------------------
    def send_message(self, message: ConversationMessage) -> None:
        """Send a stored outbound message (an officer's reply, or the closing note)."""
        self.enqueue(message.openid, "handoff.jobs.send_message", message.id)

    def send_as_template(self, message: ConversationMessage) -> None:
        self.enqueue(message.openid, "handoff.jobs.send_as_template", message.id)

    def send_notice(self, notice: OfficerNotice, openid: str) -> None:
        self.enqueue(openid, "handoff.jobs.send_notice", notice.id)

    def tell_officer(self, wecom_userid: str, text: str) -> None:
        """A WeCom text to an officer about an application (its record is the application's history)."""
        self.enqueue(wecom_userid, "handoff.jobs.tell_officer", wecom_userid, text)

    # -- authorization ---------------------------------------------------------------
    def qr_image(self, openid: str, token: str, expires_at: str) -> None:
        """Send an authorization's QR code as an image message (auth_flow.qr.send_qr_image)."""
        self.enqueue(openid, "auth_flow.qr.send_qr_image", openid, token, expires_at)

    # -- credit reports -----------------------------------------------------------
    def fetch_reports(self, application_id: int) -> None:
        """Query an application's credit reports in a worker (auth_flow.reports.fetch_job)."""
        key = f"application:{application_id}"
        self.enqueue(key, "auth_flow.reports.fetch_job", application_id, timeout_s=REPORTS_TIMEOUT_S)

    # -- the loan -------------------------------------------------------------------
    def disburse(self, application_id: int, delay_s: float = 0) -> None:
        """Pay out a signed loan through core banking in a worker (lending.disbursement.disburse_job)."""
        key = f"application:{application_id}"
        self.enqueue(key, "lending.disbursement.disburse_job", application_id, delay_s=delay_s)

    def sync_loan(self, loan_id: int) -> None:
        """Copy a loan's balances and instalment statuses from core banking (lending.loans.sync_job)."""
        self.enqueue(f"loan:{loan_id}", "lending.loans.sync_job", loan_id)


_AFTER_COMMIT = "sunshine.after_commit"


def after_commit(session: Session, callback: Callable[[], None], key: Hashable | None = None) -> None:
    """Run `callback` once after `session`'s transaction commits; never if it rolls back.

    A later callback with the same `key` replaces an earlier one (e.g. one notice per
    application). A callback that fails is logged: what was committed stands.
    """
    pending = session.info.get(_AFTER_COMMIT)
    if pending is None:
        pending = session.info[_AFTER_COMMIT] = {}
        if not event.contains(session, "after_commit", _run):
            event.listen(session, "after_commit", _run)
            event.listen(session, "after_soft_rollback", _drop)
    pending[key if key is not None else object()] = callback


def _run(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, {}).values():
        try:
            callback()
        except Exception:
            log.exception("an action after a commit failed")


def _drop(session: Session, rolled_back: SessionTransaction) -> None:
    if rolled_back.parent is None:  # the whole transaction, not a savepoint within it
        session.info.pop(_AFTER_COMMIT, None)
