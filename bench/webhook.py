"""`python -m bench.webhook`: the WeChat webhook under load, against Rasa's own REST channel.

Starts the whole stack (`sunshine.local_stack`: gunicorn web, workers, Rasa,
action server, WeChat API emulator) in safe (AES) mode. At each load level,
that many simulated WeChat users send encrypted text messages to `/wechat`
one after another, as WeChat does (5 s timeout, retries); then the same
messages go straight to Rasa's REST channel with the same concurrency, in the
same run. Prints messages per second, p50/p95/p99 of the HTTP answer, the
share answered passively and through the customer-service API, and lost and
duplicated answers (each message must get exactly one answer: passive, or
through the API as the emulator records it).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.results import percentile, record
from emulators.wechat.crowd import Crowd, questions
from sunshine import local_stack
from sunshine.settings import Settings

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ASYNC_SETTLE_S = 60


@dataclass
class Run:
    """One load level through one path (webhook or Rasa REST)."""

    path: str
    users: int
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    passive: int = 0
    asynchronous: int = 0
    failed: int = 0
    retried: int = 0
    started: float = 0.0
    finished: float = 0.0
    lost: int = 0
    duplicated: int = 0

    @property
    def msgs_per_s(self) -> float:
        return self.sent / max(1e-9, self.finished - self.started)

    def row(self) -> str:
        p = self.latencies_ms
        answered = self.passive + self.asynchronous
        passive_share = f"{100 * self.passive / answered:5.1f}%" if answered else "   - "
        return (
            f"{self.path:<8} {self.users:>5} {self.sent:>6} {self.msgs_per_s:>8.1f} {percentile(p, 50):>8.0f} "
            f"{percentile(p, 95):>8.0f} {percentile(p, 99):>8.0f} {passive_share:>8} {self.retried:>7} "
            f"{self.failed:>6} {self.lost:>5} {self.duplicated:>5}"
        )


HEADER = (
    f"{'path':<8} {'users':>5} {'msgs':>6} {'msg/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
    f"{'passive':>8} {'retried':>7} {'failed':>6} {'lost':>5} {'dup':>5}"
)


def crowd(stack: local_stack.Stack, users: int, **options) -> Crowd:
    """Simulated WeChat users against the stack's `/wechat`, in its mode (safe when it has an AES key)."""
    s = Settings()
    return Crowd(
        stack.web + "/wechat",
        stack.wechat_api,
        s.wechat_token,
        s.wechat_appid,
        stack.env.get("WECHAT_AES_KEY", ""),
        users=users,
        **options,
    )


def webhook_level(stack: local_stack.Stack, users: int, per_user: int) -> Run:
    result = crowd(stack, users).run(messages_per_user=per_user, settle_s=ASYNC_SETTLE_S)
    return Run(
        "webhook",
        users,
        result.latencies_ms,
        result.sent,
        result.passive,
        result.asynchronous,
        result.failed,
        result.retried,
        result.started,
        result.finished,
        result.lost,
        result.duplicated,
    )


def rasa_level(stack: local_stack.Stack, users: int, per_user: int, tag: str) -> Run:
    """The same questions straight to Rasa's REST channel: an answer is a non-empty 200."""
    run = Run("rasa", users)
    lock = threading.Lock()

    def user_loop(i: int) -> None:
        session = stack.rasa_http()
        for text in itertools.islice(questions(i, 0), per_user):
            began = time.monotonic()
            try:
                resp = session.post(
                    f"{stack.rasa}/webhooks/rest/webhook",
                    json={"sender": f"rest_bench_{tag}_{users}_{i}", "message": text},
                    timeout=30,
                )
                ok = resp.status_code == 200 and bool(resp.json())
            except requests.RequestException:
                ok = False
            with lock:
                run.sent += 1
                if ok:
                    run.latencies_ms.append(1000 * (time.monotonic() - began))
                    run.passive += 1
                else:
                    run.failed += 1
                    run.lost += 1

    threads = [threading.Thread(target=user_loop, args=(i,)) for i in range(users)]
    run.started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finished = time.monotonic()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,96", help="concurrent users at each load level")
    parser.add_argument("--messages", type=int, default=160, help="messages per load level and path")
    parser.add_argument("--web-workers", default="2")
    parser.add_argument("--worker-processes", default="4")
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        folder = Path(tmp)
        print("starting the stack (Rasa takes about a minute to load) ...", flush=True)
        stack = local_stack.start(
            folder,
            f"sqlite:///{folder / 'bench.sqlite'}",
            WECHAT_AES_KEY=AES_KEY,
            WEB_WORKERS=args.web_workers,
            WORKER_PROCESSES=args.worker_processes,
            LOG_LEVEL="WARNING",
        )
        try:
            webhook_level(stack, 2, 3)  # load models, JIT paths and connections
            rasa_level(stack, 2, 3, "warm")
            runs = []
            for users in levels:
                per_user = max(2, args.messages // users)
                runs.append(webhook_level(stack, users, per_user))
                runs.append(rasa_level(stack, users, per_user, "run"))
                print(f"  {users} users done", flush=True)
        finally:
            stack.stop()
    print(
        f"\nwebhook vs Rasa REST, {args.web_workers} web workers, {args.worker_processes} reply workers, "
        f"AES safe mode\n{HEADER}"
    )
    for run in runs:
        print(run.row())
    webhook = [r for r in runs if r.path == "webhook"]
    rasa = [r for r in runs if r.path == "rasa"]
    top_webhook, top_rasa = max(webhook, key=lambda r: r.msgs_per_s), max(rasa, key=lambda r: r.msgs_per_s)
    ratios = [w.msgs_per_s / r.msgs_per_s for w, r in zip(webhook, rasa, strict=False)]
    worst_p99 = max(percentile(r.latencies_ms, 99) for r in webhook)
    print(
        f"\nwebhook/Rasa throughput at each level: {', '.join(f'{x:.2f}' for x in ratios)}; "
        f"worst webhook p99 {worst_p99:.0f} ms (WeChat waits 5000 ms)"
    )
    record(
        {
            "webhook_msgs_per_s": (top_webhook.msgs_per_s, "msg/s", top_rasa.msgs_per_s),
            "webhook_p99_ms": (worst_p99, "ms", max(percentile(r.latencies_ms, 99) for r in rasa)),
            "webhook_overhead_ratio": (top_webhook.msgs_per_s / top_rasa.msgs_per_s, "ratio", 1.0),
            "webhook_lost": (sum(r.lost for r in webhook), "messages", None),
            "webhook_duplicated": (sum(r.duplicated for r in webhook), "messages", None),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
