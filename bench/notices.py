"""`python -m bench.notices`: reaching people who have not written for 48 hours.

The demo village's customers (up to 40) get a WeChat and a mini-program openid; every one
has been silent for 49 hours (the WeChat emulator answers 45015 to customer-service
messages), and every other one accepted the application-status subscription template in
the mini-program (the emulator pushes it to /wechat/mp of the web app, served here). Each
gets one application-status notice through conversation.notices, against the emulator.

- `notice_delivered_outside_window`: the share of those notices delivered (not left to the
  officer) to the people who accepted a subscription (target 1.0). Baseline: the share the
  customer-service message alone delivers to them (what the bank sent before: 0).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from bench.binding import scratch_database
from bench.results import record

PEOPLE = 40


def main() -> None:
    import requests
    from sqlalchemy import select

    from clients.wechat import WeChatApi, WeChatApiError
    from conversation.notices import deliver_notice, notice_kind
    from emulators import serve_in_thread
    from emulators.wechat.api import create_app as wechat_emulator
    from sunshine import redis_server
    from sunshine.db import unit_of_work
    from sunshine.local_stack import free_port
    from sunshine.models import Customer, NoticeDelivery
    from sunshine.settings import load
    from webhooks import create_app as web_app

    with tempfile.TemporaryDirectory() as tmp, scratch_database(Path(tmp)) as url:
        port = free_port()
        redis_proc = redis_server.start(port, Path(tmp))
        try:
            settings = replace(load(), database_url=url, redis_url=f"redis://127.0.0.1:{port}/0")
            with serve_in_thread(wechat_emulator(settings)) as base:
                settings = replace(settings, wechat_api_base=base)
                with serve_in_thread(web_app(settings)) as web:
                    push = {"url": f"{web}/wechat/mp", "token": settings.wxa_push_token}
                    requests.post(f"{base}/_emulator/wxa_push", json=push, timeout=5).raise_for_status()
                    template_id = notice_kind(settings, "application_status").subscribe.template_id  # type: ignore[union-attr]
                    with unit_of_work(url) as s:
                        people = s.scalars(select(Customer).order_by(Customer.id).limit(PEOPLE)).all()
                        for c in people:
                            c.wechat_openid = c.wechat_openid or f"o_bench_{c.id}"
                            c.mp_openid = f"o_mp_bench_{c.id}"
                        ids = {c.wechat_openid: (c.mp_openid, c.id % 2 == 0) for c in people}
                    for openid, (mp_openid, accepts) in ids.items():
                        requests.post(
                            f"{base}/_emulator/window", json={"touser": openid, "silent_hours": 49}, timeout=5
                        ).raise_for_status()
                        if accepts:
                            body = {"openid": mp_openid, "template_ids": [template_id], "status": "accept"}
                            answer = requests.post(f"{base}/_emulator/subscriptions", json=body, timeout=5).json()
                            assert answer["pushed"] == 200, answer  # noqa: S101  a benchmark's sanity check
                    accepted = [o for o, (_, a) in ids.items() if a]
                    api = WeChatApi.from_settings(settings)
                    before = 0
                    for openid in accepted:  # the customer-service message alone, as before
                        try:
                            api.send_text(openid, "您的申请有新进展")
                            before += 1
                        except WeChatApiError:
                            pass
                    fields = {"product": "阳光e贷", "amount": 50000, "status": "审批通过"}
                    sent = {
                        o: deliver_notice(
                            o, "您的阳光e贷申请已审批通过。", "application_status", None, None, fields, settings
                        )
                        for o in ids
                    }
            with unit_of_work(url) as s:
                rows = {n.id: n for n in s.scalars(select(NoticeDelivery))}
                channels = {o: (rows[i].status, rows[i].channel) for o, i in sent.items()}
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    delivered = sum(channels[o][0] == "delivered" for o in accepted) / len(accepted)
    by_subscription = sum(channels[o][1] == "subscribe" for o in accepted)
    others = [channels[o][1] for o in ids if o not in accepted]
    record({"notice_delivered_outside_window": (delivered, "share", before / len(accepted))})
    print(
        f"notice_delivered_outside_window  {delivered:.2f}   ({by_subscription} of {len(accepted)} by subscription "
        f"message; customer-service message alone: {before}; the {len(others)} without one: "
        f"{others.count('template')} by template message, {others.count('officer')} to the officer)"
    )


if __name__ == "__main__":
    main()
