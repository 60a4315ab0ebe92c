"""A crowd of simulated WeChat users talking to the bank's webhook at once.

Each of `users` threads plays one customer after another (`WeChatUser`: WeChat's
XML, signatures, AES, 5 s timeout and retries). A customer sends the texts of
its visit one after another, each as soon as the previous one got its HTTP
answer; when the visit's texts run out, the next customer (a new openid) takes
the thread. Every message is recorded: its MsgId, when it was sent, the HTTP
answer time, and whether it was answered passively, left to the
customer-service API (`success`), or not delivered at all (WeChat gave up).

Each message must get exactly one answer: the passive reply, or one
customer-service message as the WeChat API emulator records it. After the
crowd stops, `stop()` waits for the customer-service answers (up to
`settle_s`) and reconciles them with the messages, per customer and in order
(a customer's answers are delivered in the order of its messages): a message
left without an answer is lost, an answer no message is left for is a
duplicate. The result names the MsgIds of both, for failure messages. The
customer-service messages carry no MsgId, so the names are the in-order
reading: exact when the fault is in a visit's last message, and a lost and a
duplicated answer in one customer's visit cancel out in the counts (a visit
is a few messages, so that needs two faults in a few seconds). A passive
reply whose text is one of `acknowledgements` (e.g. "received, please wait")
is not the answer: such a message still needs one customer-service answer.
A message the bank keeps for a person instead of answering (`kept`, e.g. one
held in an officer's open hand-off) is not waited for while settling; it is
still reported lost, for the caller to excuse. A customer-service message the
bank sends on its own (`notice`, e.g. the authorization QR codes after an
application) is no answer.

    crowd = Crowd(web + "/wechat", emulator, token, appid, aes_key, users=8)
    crowd.start(duration_s=60)          # in the background
    ...                                 # kill something, watch the counts
    print(crowd.counts())               # live: sent, passive, asynchronous, failed, ...
    result = crowd.stop()               # stop sending, settle, reconcile
    assert result.lost == 0, result.lost_ids

`crowd.run(messages_per_user=20)` does the same in the foreground.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import requests

from emulators.wechat.user import DeliveryError, WeChatUser, next_msgid

# What customers ask when no conversation is given; each gets exactly one answer from the bot.
QUESTIONS = (
    "你好",
    "我能贷多少",
    "利息咋算",
    "有哪些贷款产品",
    "怎么还款",
    "医院缴费咋弄",
    "谢谢",
    "俺想问问额度还剩多少",
    "公e贷利率多少",
    "摇号验资怎么查",
)
SETTLE_S = 60


def questions(user: int, visit: int) -> Iterable[str]:
    """The default visit: the questions in turn, each user starting at its own, without end."""
    start = user % len(QUESTIONS)
    return itertools.cycle(QUESTIONS[start:] + QUESTIONS[:start])


@dataclass
class Message:
    """One message a customer sent, and what became of it."""

    openid: str
    msg_id: int
    text: str
    sent_at: float  # wall clock (the emulator records answers by wall clock)
    kind: str = "pending"  # passive | async | failed
    latency_ms: float | None = None  # HTTP answer time (passive or `success`), retries included
    attempts: int = 0
    error: str = ""
    answer: str | None = None  # the passive text, or the customer-service message matched to it
    answered_at: float | None = None  # wall clock: the passive reply, or when the emulator got the message
    answered_by: list[int] = field(default_factory=list)  # emulator message ids matched to it

    @property
    def answer_ms(self) -> float | None:
        """From sending to the answer reaching the customer (passive or through the API); None: no answer."""
        return None if self.answered_at is None else 1000 * (self.answered_at - self.sent_at)


@dataclass
class Result:
    """A finished crowd run, reconciled with the emulator's record."""

    messages: list[Message]
    started: float
    finished: float  # when the last answer reached its customer (monotonic)
    sending_s: float  # how long the crowd was sending
    lost_ids: list[int]
    duplicated_ids: list[int]  # MsgIds after which an extra answer came (0: none before it)
    extra_answers: list[str]  # the texts of the extra answers

    @property
    def sent(self) -> int:
        return len(self.messages)

    def _kind(self, kind: str) -> int:
        return sum(m.kind == kind for m in self.messages)

    @property
    def passive(self) -> int:
        return self._kind("passive")

    @property
    def asynchronous(self) -> int:
        return self._kind("async")

    @property
    def failed(self) -> int:
        return self._kind("failed")

    @property
    def retried(self) -> int:
        return sum(m.attempts > 1 for m in self.messages)

    @property
    def lost(self) -> int:
        return len(self.lost_ids)

    @property
    def duplicated(self) -> int:
        return len(self.duplicated_ids)

    @property
    def answered(self) -> int:
        return self.sent - self.lost

    @property
    def latencies_ms(self) -> list[float]:
        return [m.latency_ms for m in self.messages if m.latency_ms is not None]

    @property
    def answer_times_ms(self) -> list[float]:
        """Per answered message: from sending to the answer reaching the customer."""
        return [m.answer_ms for m in self.messages if m.answer_ms is not None]

    @property
    def msgs_per_s(self) -> float:
        return self.sent / max(1e-9, self.finished - self.started)

    def summary(self) -> str:
        return (
            f"sent {self.sent}, passive {self.passive}, async {self.asynchronous}, failed {self.failed}, "
            f"retried {self.retried}, lost {self.lost} {self.lost_ids[:10]}, "
            f"duplicated {self.duplicated} {self.duplicated_ids[:10]}"
        )


class Crowd:
    """`users` simulated WeChat users sending to `webhook_url`; answers read back from `emulator_url`.

    `conversation(user, visit)` gives the texts one customer sends in one visit
    (default: `questions`, without end); a visit's customer has the openid
    `{prefix}{user}_{visit}` (default prefix: `o_crowd_` and a random tag, so that
    runs against one emulator do not mix). `user_options` go to each `WeChatUser`
    (timeout, max_retries, mode)."""

    def __init__(
        self,
        webhook_url: str,
        emulator_url: str,
        token: str,
        appid: str,
        aes_key: str = "",
        *,
        users: int = 8,
        conversation: Callable[[int, int], Iterable[str]] = questions,
        prefix: str | None = None,
        acknowledgements: Iterable[str] = (),
        kept: Callable[[list[int]], set[int]] | None = None,
        notice: Callable[[dict], bool] | None = None,
        **user_options,
    ):
        self.webhook_url = webhook_url
        self.emulator_url = emulator_url.rstrip("/")
        self.token, self.appid, self.aes_key = token, appid, aes_key
        self.users = users
        self.conversation = conversation
        self.prefix = prefix or f"o_crowd_{secrets.token_hex(3)}_"
        self.user_options = user_options
        self.acknowledgements = frozenset(acknowledgements)
        self.kept = kept  # which of the given MsgIds the bank keeps for a person: no answer to wait for
        self.notice = notice  # which customer-service messages the bank sends on its own: not answers
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = self._started_wall = self._sending_done = 0.0
        self._seen_upto = 0  # the newest emulator message id read
        self._answers: dict[str, list[dict]] = {}

    # -- sending -------------------------------------------------------------
    def start(self, duration_s: float | None = None, messages_per_user: int | None = None) -> Crowd:
        """Start every user in the background; each stops after `duration_s`, after
        `messages_per_user`, or at `stop()`, whichever comes first."""
        if self._threads:
            raise RuntimeError("this crowd has already started")
        deadline = None if duration_s is None else time.monotonic() + duration_s
        self._started, self._started_wall = time.monotonic(), time.time()
        self._threads = [
            threading.Thread(target=self._user, args=(i, deadline, messages_per_user), name=f"crowd-{i}", daemon=True)
            for i in range(self.users)
        ]
        for t in self._threads:
            t.start()
        return self

    def _user(self, index: int, deadline: float | None, limit: int | None) -> None:
        sent = 0
        http = requests.Session()
        for visit in itertools.count():
            openid = f"{self.prefix}{index}_{visit}"
            user = WeChatUser(
                self.webhook_url, self.token, self.appid, self.aes_key, openid=openid, http=http, **self.user_options
            )
            said_nothing = True
            for text in self.conversation(index, visit):
                if (
                    self._stopping.is_set()
                    or (deadline and time.monotonic() >= deadline)
                    or (limit is not None and sent >= limit)
                ):
                    return
                self._send(user, text)
                sent += 1
                said_nothing = False
            if said_nothing:  # an empty visit: this user has nothing more to say
                return

    def _send(self, user: WeChatUser, text: str) -> None:
        msg_id = next_msgid()
        message = Message(user.openid, msg_id, text, time.time())
        with self._lock:
            self._messages.append(message)
        xml = user.text_xml(text, msg_id)
        began = time.monotonic()
        try:
            reply = user.deliver(xml)
        except DeliveryError as exc:
            message.kind, message.attempts, message.error = "failed", exc.attempts, str(exc)
            return
        except Exception as exc:  # e.g. the connection dropped mid-answer: the user goes on
            message.kind, message.attempts, message.error = "failed", 1, f"{type(exc).__name__}: {exc}"
            return
        message.latency_ms = 1000 * (time.monotonic() - began)
        message.attempts = reply.attempts
        message.kind = "async" if reply.empty else "passive"
        if not reply.empty:
            message.answer, message.answered_at = reply.describe(), message.sent_at + message.latency_ms / 1000

    def counts(self) -> dict[str, int]:
        """Live counts while the crowd runs: sent, passive, asynchronous, failed, retried, in_flight."""
        with self._lock:
            kinds = [m.kind for m in self._messages]
            retried = sum(m.attempts > 1 for m in self._messages)
        return {
            "sent": len(kinds),
            "passive": kinds.count("passive"),
            "asynchronous": kinds.count("async"),
            "failed": kinds.count("failed"),
            "retried": retried,
            "in_flight": kinds.count("pending"),
        }

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every user to finish (duration or message count reached); True when they have."""
        end = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if end is None else max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self, settle_s: float = SETTLE_S) -> Result:
        """Stop sending (messages on the way are finished), wait up to `settle_s` for the
        customer-service answers, and reconcile."""
        self._stopping.set()
        self.wait()
        self._sending_done = time.monotonic()
        return self.reconcile(settle_s)

    def run(
        self, duration_s: float | None = None, messages_per_user: int | None = None, settle_s: float = SETTLE_S
    ) -> Result:
        """`start`, wait for the users to finish, `stop`."""
        if duration_s is None and messages_per_user is None:
            raise ValueError("give a duration or a number of messages per user")
        self.start(duration_s, messages_per_user)
        self.wait()
        return self.stop(settle_s)

    # -- reconciling -----------------------------------------------------------
    def _pushed(self) -> dict[str, list[dict]]:
        """The emulator's customer-service messages to this crowd's customers, by openid, oldest first
        (read incrementally: each call fetches only what arrived since the last)."""
        new = requests.get(
            f"{self.emulator_url}/_emulator/messages", params={"since": self._seen_upto}, timeout=30
        ).json()
        for m in new:
            self._seen_upto = max(self._seen_upto, m["id"])
            if m["touser"].startswith(self.prefix) and not (self.notice and self.notice(m)):
                self._answers.setdefault(m["touser"], []).append(m)
        return self._answers

    def _needs_answer(self, m: Message) -> bool:
        """Whether the message still needs a customer-service answer."""
        return m.kind != "passive" or m.answer in self.acknowledgements

    def reconcile(self, settle_s: float = SETTLE_S) -> Result:
        """Wait up to `settle_s` until every message not answered passively has an answer, then match."""
        with self._lock:
            messages = list(self._messages)
        by_user: dict[str, list[Message]] = {}
        for m in messages:
            by_user.setdefault(m.openid, []).append(m)
        expected = {u: [m.msg_id for m in ms if self._needs_answer(m)] for u, ms in by_user.items()}
        deadline = time.monotonic() + settle_s
        while True:
            pushed = self._pushed()
            short = {u: ids for u, ids in expected.items() if len(pushed.get(u, [])) < len(ids)}
            if short and self.kept is not None:
                held = self.kept([i for ids in short.values() for i in ids])
                short = {u: ids for u, ids in short.items() if len(pushed.get(u, [])) < len(set(ids) - held)}
            if not short or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1)  # a late duplicate would show up now
        pushed = self._pushed()
        lost: list[int] = []
        duplicated: list[int] = []
        extra: list[str] = []
        last_answer = 0.0
        for openid in sorted(set(by_user) | set(pushed)):
            answers = pushed.get(openid, [])
            last_answer = max([last_answer] + [_wall(a) for a in answers])
            lost_here, extras = _match(by_user.get(openid, []), answers, self._needs_answer)
            lost += lost_here
            for msg_id, answer in extras:
                duplicated.append(msg_id)
                extra.append(answer.get("content") or answer.get("msgtype", ""))
        sending_done = self._sending_done or time.monotonic()
        # The run ends when its last answer reached the customer.
        finished = (
            max(sending_done, self._started + (last_answer - self._started_wall)) if last_answer else sending_done
        )
        return Result(messages, self._started, finished, sending_done - self._started, sorted(lost), duplicated, extra)


def _wall(answer: dict) -> float:
    return datetime.fromisoformat(answer["received_at"]).timestamp()


def _match(
    messages: list[Message],
    answers: list[dict],
    needs_answer: Callable[[Message], bool] = lambda m: m.kind != "passive",
) -> tuple[list[int], list[tuple[int, dict]]]:
    """One customer's messages against its customer-service answers, both in order.

    A message `needs_answer` does not need takes none; any other takes the next answer received
    after it was sent. An answer received before the message that would take
    it is an extra one. Returns the MsgIds left without an answer, and each
    extra answer with the MsgId of the last message sent before it (0: none)."""
    queue = list(answers)
    lost: list[int] = []
    extras: list[tuple[int, dict]] = []

    def extra(answer: dict) -> None:
        before = [m.msg_id for m in messages if m.sent_at <= _wall(answer)]
        extras.append((before[-1] if before else 0, answer))

    for m in messages:
        if not needs_answer(m):
            continue
        while queue and _wall(queue[0]) < m.sent_at:
            extra(queue.pop(0))
        if queue:
            answer = queue.pop(0)
            m.answered_by.append(answer["id"])
            m.answer, m.answered_at = answer.get("content") or answer.get("msgtype", ""), _wall(answer)
        else:
            lost.append(m.msg_id)
    for answer in queue:
        extra(answer)
    return lost, extras
