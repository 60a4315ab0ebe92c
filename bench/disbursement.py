"""`python -m bench.disbursement`: from a signed contract to the money and the customer's notice.

- `approval_to_disbursed_s`: the median, over a few demo customers' signed loans, of the
  seconds from the disbursement job enqueued (sunshine.jobs.Jobs.disburse, as the signing
  does) to the customer's WeChat notice of the money delivered to the WeChat API emulator.
  Between them, the real parts: Redis, a reply worker process (`python -m conversation.worker`)
  running lending.disbursement (the record, three signed calls to the core-banking emulator
  over HTTP, the loan and its schedule stored), then the notice job sending the notice
  (conversation.notices: a template message, these customers having not written).
  Target < 3 s. Baseline: an application-status notice enqueued to its delivery, by the
  same path: what the disbursement adds to any notice.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import requests

from bench.results import record

SECRET = "bench-secret"  # noqa: S105  a benchmark's throw-away secret
# Signed loans measured: (WeChat openid, product, amount in yuan)
LOANS = (
    ("o_demo_zhangjianguo", "sunshine_e_loan", 50_000),
    ("o_demo_wangchunhua", "sunshine_e_loan", 30_000),
    ("o_demo_qianyumei", "civil_servant_e_loan", 60_000),
)
TIMEOUT_S = 30.0


def _delivered(wechat: str, openid: str) -> int:
    """How many messages reached `openid` (the emulator lists customer-service and template messages)."""
    return len(requests.get(f"{wechat}/_emulator/messages", params={"touser": openid}, timeout=5).json())


def _wait_for(wechat: str, openid: str, after: int) -> float:
    """Poll the WeChat emulator until `openid` has more than `after` messages; when."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if _delivered(wechat, openid) > after:
            return time.perf_counter()
        time.sleep(0.01)
    raise RuntimeError(f"no new WeChat message to {openid} within {TIMEOUT_S:g} s")


def _signed(settings, openid: str, product: str, amount: int) -> int:
    from lending.applications import Applications
    from lending.customers import by_openid
    from lending.reports import parties
    from sunshine.db import unit_of_work
    from sunshine.protect import unseal
    from tests.unit.lending_helpers import report, sign

    svc = Applications(SECRET, lambda openid, text, **details: None)
    with unit_of_work(settings.database_url) as s:
        customer = by_openid(s, openid)
        app = svc.apply(s, customer.id, product, amount, 12, idempotency_key=f"bench-{openid}")
        people = parties(s, app)
        reports = {role: report(unseal(SECRET, p.id_sealed), p.name) for role, p in people.items()}
        svc.report_arrived(s, app.id, reports)
        sign(s, svc, app.id)
        return app.id


def measure() -> tuple[float, float]:
    from emulators import serve_in_thread
    from emulators.corebank.api import create_app as corebank_app
    from emulators.wechat.api import create_app as wechat_app
    from sunshine import redis_server
    from sunshine.db import unit_of_work
    from sunshine.demo import load_demo
    from sunshine.jobs import Jobs
    from sunshine.launcher import child_env
    from sunshine.local_stack import free_port
    from sunshine.migrate import upgrade
    from sunshine.models import LoanApplication
    from sunshine.settings import ROOT, Settings

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        redis = redis_server.start(port, Path(tmp))
        base = Settings()
        with (
            serve_in_thread(corebank_app(base.core_banking_channel_id, base.core_banking_secret)) as core,
            serve_in_thread(wechat_app(base)) as wechat,
        ):
            settings = replace(
                base,
                database_url=f"sqlite:///{Path(tmp) / 'bench.sqlite'}",
                redis_url=f"redis://127.0.0.1:{port}/0",
                core_banking_url=core,
                wechat_api_base=wechat,
                secret_key=SECRET,
                worker_processes=1,
            )
            upgrade(settings.database_url)
            with unit_of_work(settings.database_url) as s:
                load_demo(s, SECRET)
            env = child_env(settings)  # the launcher's environment of a child process, and the rest:
            env.update(CORE_BANKING_URL=core, WECHAT_API_BASE=wechat, SECRET_KEY=SECRET, WORKER_PROCESSES="1")
            worker = subprocess.Popen(  # noqa: S603  our own worker module, no shell
                [sys.executable, "-m", "conversation.worker", "0"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            try:
                jobs = Jobs(settings)
                delivery, disbursed = [], []
                for openid, product, amount in LOANS:
                    app_id = _signed(settings, openid, product, amount)
                    before, t0 = _delivered(wechat, openid), time.perf_counter()
                    fields = {"product": product, "amount": amount, "status": "已签约"}
                    jobs.notice(openid, "您的借款合同已签订，正在放款。", "application_status", app_id, None, fields)
                    delivery.append(_wait_for(wechat, openid, before) - t0)
                    before, t0 = _delivered(wechat, openid), time.perf_counter()
                    jobs.disburse(app_id)
                    disbursed.append(_wait_for(wechat, openid, before) - t0)
                    with unit_of_work(settings.database_url) as s:
                        assert s.get(LoanApplication, app_id).status == "disbursed"  # noqa: S101  a benchmark's sanity check
            finally:
                worker.terminate()
                worker.wait(10)
                redis.terminate()
                redis.wait(10)
    return statistics.median(disbursed), statistics.median(delivery)


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulators' request lines
    value, baseline = measure()
    record({"approval_to_disbursed_s": (value, "s", baseline)})
    print(f"approval_to_disbursed_s  {value:6.3f} s   (baseline, the notice's delivery alone: {baseline:.3f} s)")


if __name__ == "__main__":
    main()
