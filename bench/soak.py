"""`python -m bench.soak`: the whole stack under a steady crowd of WeChat users (`make soak`).

Starts every process as `make run` does (`sunshine.local_stack`: gunicorn web,
reply workers, Rasa, action server, housekeeping, Redis, emulators; safe AES
mode), with a village credit file of generated households besides the demo
data. A crowd of simulated WeChat users (`emulators.wechat.crowd`) then talks
to `/wechat` back to back, each visit one of a realistic mix: a few questions
(rates, products, repayment, the scenario services), a loan application from
greeting to submission by a household of the village file, questions about the
credit-report authorization, or a hand-off to an officer (转人工).

After a warm-up with the same mix (models loaded, every code path and process
used once), the memory (RSS) of every process of the stack is sampled, the
crowd runs for `--minutes`, and the memory is sampled again. Reports
messages per second, p50/p95/p99 of the answer time (sending to the answer
reaching the customer, passive or through the customer-service API), errors,
lost and duplicated answers, and each process's memory at start and end.
Exits 1 when an answer was lost or duplicated, or a process of the stack died.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from bench.lending import village_row, write_village_file
from bench.results import percentile, record
from bench.webhook import AES_KEY
from bench.webhook import crowd as webhook_crowd
from bot.actions.common import SORRY_BUSY
from conversation.tasks import BOT_UNAVAILABLE
from emulators.wechat.crowd import Result
from lending.village_file import import_file
from sunshine import launcher, local_stack
from sunshine.db import unit_of_work
from sunshine.settings import ROOT, VAR, Settings

SECRET_KEY = "soak-secret-key"  # noqa: S105  a benchmark's throw-away secret
LOG_COPY = VAR / "bench" / "soak-stack.log"
HOUSEHOLDS = 3000
SAMPLE_EVERY_S = 30
# Processes whose memory holds the run's data by design (the emulator keeps every message,
# Redis the trackers and de-duplication keys): reported, but not in soak_mem_growth_ratio.
DATA_HOLDERS = ("redis", "wechat-emulator", "bureau-emulator", "corebank-emulator", "wecom-emulator", "sms-emulator")

QUESTIONS = (
    "你好",
    "利息咋算",
    "有哪些贷款产品",
    "怎么还款",
    "医院缴费咋弄",
    "摇号验资怎么查",
    "寒山公园门票咋买",
    "提前还款要手续费不",
    "公e贷利率多少",
    "我能贷多少",
    "逾期了会咋样",
    "谢谢",
    "再见",
)
AUTHORIZATION_QUESTIONS = (
    "征信授权是啥意思",
    "我老婆也要授权吗",
    "担保人要刷脸不",
    "授权链接过期了咋办",
    "为啥要查征信",
)
# Shares of the visits: questions, a loan application, authorization questions, 转人工.
MIX = (("questions", 0.55), ("application", 0.25), ("authorization", 0.13), ("hand_off", 0.07))


class Visits:
    """What one customer says in one visit, drawn from MIX (the same for the same user and visit)."""

    def __init__(self, households: int):
        self.households = households
        self._next_household = itertools.count()

    def kind(self, rng: random.Random) -> str:
        x, total = rng.random(), 0.0
        for kind, share in MIX:
            total += share
            if x < total:
                return kind
        return MIX[-1][0]

    def __call__(self, user: int, visit: int) -> list[str]:
        rng = random.Random(f"{user}:{visit}")  # noqa: S311  a reproducible mix of messages, not a secret
        kind = self.kind(rng)
        if kind == "application":  # a household of the village file, each once while they last
            row = village_row(next(self._next_household) % self.households)
            return [
                "你好",
                "我想贷款",
                f"{row['household_head']} {row['id_number']}",
                "1",
                "借5万",
                "一年",
                "买化肥种子",
                "确认",
                "征信授权怎么弄",
                "我的申请到哪一步了",
            ]
        if kind == "authorization":
            return rng.sample(AUTHORIZATION_QUESTIONS, rng.randint(2, 3)) + [rng.choice(QUESTIONS)]
        if kind == "hand_off":  # the officer has the conversation afterwards: the visit ends here
            return [rng.choice(QUESTIONS), "转人工"]
        return rng.sample(QUESTIONS, rng.randint(3, 6))


# -- the stack's processes ------------------------------------------------------


def _service(proc: psutil.Process) -> str | None:
    """The service a process runs (the launcher's name for it), `launcher` for the launcher and
    the copies of it that watch each service; None for anything else or a process gone."""
    try:
        name = local_stack.service_of(proc)
        if name is None and "sunshine.launcher" in " ".join(proc.cmdline()):
            return "launcher"
        return name
    except psutil.Error:
        return None


def stack_processes(stack: local_stack.Stack) -> dict[str, psutil.Process]:
    """Every process of the stack by a readable label: `web` (gunicorn's master) and `web.worker`,
    `worker.0` and its RQ scheduler `worker.0.scheduler`, `launcher` and the copy of it that honcho
    forks to watch each service (`rasa.honcho`), ..."""
    root = psutil.Process(stack.proc.pid)
    procs = [root] + root.children(recursive=True)
    service = {p.pid: _service(p) for p in procs}
    out: dict[str, psutil.Process] = {}
    for proc in procs:
        label, parent = service[proc.pid], service.get(proc.ppid())
        if label is None:
            continue
        if label == "launcher" and proc.pid != root.pid:
            below = [service.get(c.pid) for c in proc.children(recursive=True)]
            label = next((f"{b}.honcho" for b in below if b not in (None, "launcher")), "launcher.fork")
        elif label == parent == "web":
            label = "web.worker"
        elif label == parent and label.startswith("worker."):
            label += ".scheduler"
        name, n = label, 2
        while name in out:
            name, n = f"{label}#{n}", n + 1
        out[name] = proc
    return out


def rss(procs: dict[str, psutil.Process]) -> dict[str, int | None]:
    """Resident memory in bytes per process (None: it is gone)."""
    out: dict[str, int | None] = {}
    for name, proc in procs.items():
        try:
            out[name] = proc.memory_info().rss
        except psutil.Error:
            out[name] = None
    return out


def cpu_seconds(procs: dict[str, psutil.Process]) -> float:
    total = 0.0
    for proc in procs.values():
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# -- the run --------------------------------------------------------------------


@dataclass
class Soak:
    result: Result
    users: int
    memory: list[tuple[float, dict[str, int | None]]]  # (seconds into the run, RSS per process)
    pids: dict[str, int]
    errors_logged: list[str]
    stack_cpu_s: float
    load_average: tuple[float, float]  # 1-minute load at start and end

    @property
    def apologies(self) -> int:
        """Answers that say the bot or an action failed ("系统正在忙", "系统有点忙")."""
        return sum(
            m.answer is not None and (BOT_UNAVAILABLE in m.answer or SORRY_BUSY in m.answer)
            for m in self.result.messages
        )

    @property
    def errors(self) -> int:
        """Messages WeChat could not deliver, "system busy" answers, and ERROR lines in the stack's log."""
        return self.result.failed + self.apologies + len(self.errors_logged)

    def growth(self) -> dict[str, float | None]:
        """End/start RSS per process (None: the process was gone at the end)."""
        start, end = self.memory[0][1], self.memory[-1][1]
        return {name: (end[name] / start[name] if start[name] and end.get(name) else None) for name in start}

    @property
    def gone(self) -> list[str]:
        """Processes of the stack that died during the run (the soak fails)."""
        return [n for n, g in self.growth().items() if g is None]

    def growth_ratio(self) -> tuple[float, str]:
        """The largest end/start RSS ratio of the bank's own processes still running, and which."""
        growth = {n: g for n, g in self.growth().items() if g is not None and n.split("#")[0] not in DATA_HOLDERS}
        name = max(growth, key=growth.get)
        return growth[name], name


def load_households(database_url: str, secret_key: str, folder: Path, households: int = HOUSEHOLDS) -> None:
    """Add a village file of generated households (bench.lending's) for the loan applications."""
    path = write_village_file(folder / "soak-village.csv", households)
    with unit_of_work(database_url) as session:
        report = import_file(session, secret_key, path, actor="soak")
    if report.errors:
        raise SystemExit(f"the soak's village file has bad rows: {report.errors[:3]}")


def _log_errors(log: Path, offset: int) -> list[str]:
    """The ERROR and Traceback lines the stack logged after `offset` bytes."""
    with log.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


def soak(
    stack: local_stack.Stack, minutes: float, users: int, warmup_s: float, households: int = HOUSEHOLDS, progress=print
) -> Soak:
    """Warm up, then run the crowd for `minutes`, sampling memory every SAMPLE_EVERY_S."""
    visits = Visits(households)
    if warmup_s > 0:
        warm = webhook_crowd(stack, users, conversation=visits).run(duration_s=warmup_s)
        progress(f"warm-up: {warm.summary()}")
    procs = stack_processes(stack)
    log_offset = stack.log.stat().st_size
    load_start = os.getloadavg()[0]
    cpu_start = cpu_seconds(procs)
    began = time.monotonic()
    memory = [(0.0, rss(procs))]
    crowd = webhook_crowd(stack, users, conversation=visits).start(duration_s=60 * minutes)
    while not crowd.wait(timeout=min(SAMPLE_EVERY_S, max(1.0, 60 * minutes))):
        memory.append((time.monotonic() - began, rss(procs)))
        counts = crowd.counts()
        progress(
            f"  {memory[-1][0]:5.0f} s: sent {counts['sent']}, failed {counts['failed']}, "
            f"stack RSS {sum(v or 0 for v in memory[-1][1].values()) / 2**20:.0f} MiB"
        )
    result = crowd.stop()
    memory.append((time.monotonic() - began, rss(procs)))
    errors = _log_errors(stack.log, log_offset)
    return Soak(
        result,
        users,
        memory,
        {n: p.pid for n, p in procs.items()},
        errors,
        cpu_seconds(procs) - cpu_start,
        (load_start, os.getloadavg()[0]),
    )


def report(run: Soak) -> str:
    r = run.result
    times = r.answer_times_ms
    lines = [
        f"{run.users} users, {r.sent} messages in {r.sending_s:.0f} s (last answer after "
        f"{r.finished - r.started:.0f} s): {r.msgs_per_s:.1f} msg/s",
        f"answer time p50 {percentile(times, 50):.0f} ms, p95 {percentile(times, 95):.0f} ms, "
        f"p99 {percentile(times, 99):.0f} ms; HTTP answer p99 {percentile(r.latencies_ms, 99):.0f} ms",
        f"passive {r.passive}, through the API {r.asynchronous}, WeChat retries {r.retried}",
        f"errors {run.errors}: undelivered {r.failed}, apologies (系统忙) {run.apologies}, "
        f"ERROR lines in the log {len(run.errors_logged)}",
        f"lost {r.lost} {r.lost_ids[:10]}, duplicated {r.duplicated} {r.duplicated_ids[:10]}",
        *[
            f"  lost: {m.msg_id} {m.openid} {m.text!r} ({m.kind}, sent {_clock(m.sent_at)})"
            for m in r.messages
            if m.msg_id in r.lost_ids[:10]
        ],
        *[
            f"  extra answer after {msg_id}: {text[:80]!r}"
            for msg_id, text in zip(r.duplicated_ids[:10], r.extra_answers[:10], strict=False)
        ],
        f"stack CPU {run.stack_cpu_s / max(1e-9, r.sending_s):.2f} cores of {os.cpu_count()}; "
        f"1-minute load average {run.load_average[0]:.1f} at start, {run.load_average[1]:.1f} at end",
        "",
        f"{'process':<24} {'pid':>7} {'start MiB':>10} {'half-way':>9} {'end MiB':>9} {'end/start':>9}",
    ]
    start, end, growth = run.memory[0][1], run.memory[-1][1], run.growth()
    half = min(run.memory, key=lambda sample: abs(sample[0] - run.memory[-1][0] / 2))[1]

    def mib(value: int | None) -> str:
        return "gone" if value is None else f"{value / 2**20:.1f}"

    for name in start:
        g = growth[name]
        lines.append(
            f"{name:<24} {run.pids[name]:>7} {mib(start[name]):>10} {mib(half.get(name)):>9} "
            f"{mib(end.get(name)):>9} {'-' if g is None else f'{g:.3f}':>9}"
        )
    total = [sum(v or 0 for v in sample.values()) for sample in (start, half, end)]
    lines.append(
        f"{'all':<24} {'':>7} {mib(total[0]):>10} {mib(total[1]):>9} {mib(total[2]):>9} "
        f"{total[2] / max(1, total[0]):>9.3f}"
    )
    ratio, which = run.growth_ratio()
    lines.append(
        f"largest growth of the bank's processes: {ratio:.3f} ({which}); "
        f"{', '.join(DATA_HOLDERS)} hold the run's data and are not counted"
    )
    if run.gone:
        lines.append(f"processes gone during the run: {', '.join(run.gone)}")
    if run.errors_logged:
        lines += ["", "first ERROR lines:"] + run.errors_logged[:5]
    return "\n".join(lines)


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def record_figures(run: Soak) -> None:
    r, times = run.result, run.result.answer_times_ms
    record(
        {
            "soak_msgs_per_s": (r.msgs_per_s, "msg/s", None),
            "soak_p50_ms": (percentile(times, 50), "ms", None),
            "soak_p95_ms": (percentile(times, 95), "ms", None),
            "soak_p99_ms": (percentile(times, 99), "ms", None),
            "soak_errors": (run.errors, "count", None),
            "soak_lost": (r.lost, "messages", None),
            "soak_duplicated": (r.duplicated, "messages", None),
            "soak_mem_growth_ratio": (run.growth_ratio()[0], "ratio", 1.0),
        }
    )


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the measured run")
    parser.add_argument("--users", type=int, default=16, help="simulated WeChat users at once")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="the same mix before the memory 'start'")
    parser.add_argument("--web-workers", default=str(defaults.web_workers))
    parser.add_argument("--worker-processes", default=str(defaults.worker_processes))
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file, as `make run`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'soak.sqlite'}"
        launcher.prepare(replace(defaults, database_url=url, secret_key=SECRET_KEY, sunshine_demo=True))
        load_households(url, SECRET_KEY, folder)
        print(
            f"starting the stack ({args.web_workers} web workers, {args.worker_processes} reply workers) ...",
            flush=True,
        )
        stack = local_stack.start(
            folder,
            url,
            SECRET_KEY=SECRET_KEY,
            WECHAT_AES_KEY=AES_KEY,
            WEB_WORKERS=args.web_workers,
            WORKER_PROCESSES=args.worker_processes,
            LOG_LEVEL="WARNING",
        )
        try:
            run = soak(stack, args.minutes, args.users, args.warmup_s, progress=lambda line: print(line, flush=True))
        finally:
            stack.stop()
            LOG_COPY.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stack.log, LOG_COPY)
    print(f"\nthe stack's log: {LOG_COPY.relative_to(ROOT)}")
    print(
        f"\nsoak: {args.minutes:g} minutes, {args.web_workers} web workers, {args.worker_processes} reply workers, "
        f"AES safe mode\n{report(run)}"
    )
    record_figures(run)
    return 1 if run.result.lost or run.result.duplicated or run.gone else 0


if __name__ == "__main__":
    raise SystemExit(main())
