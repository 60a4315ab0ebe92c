"""action_start_authorization against the demo village: one link per party of
the customer's application, progress, re-sending, and nothing without an application."""

from __future__ import annotations

from sqlalchemy import select

from auth_flow.tokens import find_by_token
from bot.actions.authorization import ActionStartAuthorization
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import Authorization
from tests.unit.bot_trackers import DEMO_OPENID, PUBLIC_BASE, UNKNOWN_OPENID, make_tracker, run, user_event
from tests.unit.lending_helpers import service

LINK = f"{PUBLIC_BASE}/auth/"


def apply_for_zhang(url: str) -> int:
    """张建国 applies for 阳光e贷 (applicant and spouse must authorize)."""
    applications, _ = service()
    with unit_of_work(url) as session:
        zhang = by_openid(session, DEMO_OPENID)
        return applications.apply(session, zhang.id, "sunshine_e_loan", 50000, 12, "test-key", purpose="买化肥").id


def ask(text: str = "征信授权咋弄", openid: str = DEMO_OPENID) -> str:
    return run(ActionStartAuthorization(), make_tracker(openid, user_event(text, "authorize_credit_report")))[0]


def tokens(text: str) -> list[str]:
    return [part.split()[0] for part in text.split(LINK)[1:]]


def pending(url: str) -> list[Authorization]:
    with unit_of_work(url) as session:
        return list(
            session.scalars(select(Authorization).where(Authorization.status == "pending").order_by(Authorization.id))
        )


def test_each_party_of_the_application_gets_a_link_and_the_progress_is_told(bank_env):
    application_id = apply_for_zhang(bank_env)

    text = ask()

    rows = pending(bank_env)
    assert [(a.party_role, a.party_name, a.application_id) for a in rows] == [
        ("applicant", "张建国", application_id),
        ("spouse", "李秀英", application_id),
    ]
    assert "刷脸" in text and "只用于这笔贷款审批" in text
    # The ID's first 4 only: nothing the spouse's identity check asks (the last 6) is given away.
    assert "请把这个链接转给配偶李**（身份证3212**************）" in text
    assert "/api/authorizations/" in text and "qr.png" in text
    assert "已授权：暂无" in text and "还需授权：本人张**、配偶李**" in text
    own, spouse = tokens(text)
    with unit_of_work(bank_env) as session:
        assert find_by_token(session, own).party_role == "applicant"
        assert find_by_token(session, spouse).party_role == "spouse"


def test_asking_again_tells_progress_without_breaking_the_links_sent(bank_env):
    apply_for_zhang(bank_env)
    first = tokens(ask())

    again = ask("我老婆授权了没")

    assert tokens(again) == [] and "还需授权" in again and "重新发授权链接" in again
    with unit_of_work(bank_env) as session:
        assert all(find_by_token(session, t) for t in first)  # still valid


def test_a_lost_link_is_sent_again_and_the_old_one_stops_working(bank_env):
    apply_for_zhang(bank_env)
    first = tokens(ask())

    fresh = tokens(ask("链接过期了重新发一下"))

    assert len(fresh) == 2 and set(fresh).isdisjoint(first)
    assert len(pending(bank_env)) == 2
    with unit_of_work(bank_env) as session:
        for old in first:
            try:
                find_by_token(session, old)
            except ValueError as exc:
                assert "作废" in str(exc)
            else:
                raise AssertionError("a superseded link must not open")


def test_without_an_application_the_bot_explains_and_issues_nothing(bank_env):
    text = ask()
    assert "征信授权就是" in text and "我要贷款" in text and "配偶" in text
    assert LINK not in text and pending(bank_env) == []


def test_an_unknown_customer_is_asked_to_apply_first(bank_env):
    text = ask(openid=UNKNOWN_OPENID)
    assert "我要贷款" in text and LINK not in text and pending(bank_env) == []


def test_link_lifetime_follows_the_setting(bank_env, monkeypatch):
    monkeypatch.setenv("AUTHORIZATION_TTL_S", "7200")
    apply_for_zhang(bank_env)
    assert "2小时内有效" in ask()


def test_asking_what_it_is_after_the_links_were_sent_explains_it_with_the_progress(bank_env):
    apply_for_zhang(bank_env)
    ask()

    explained, plain = ask("征信授权是啥意思"), ask("谁还没授权")

    assert (
        explained.startswith("征信授权就是您同意银行查一次您的征信报告") and "还需授权：本人张**、配偶李**" in explained
    )
    assert plain.startswith("征信授权进度") and tokens(explained) == tokens(plain) == []


def test_reissues_beyond_the_daily_limit_are_refused_and_recorded(bank_env, monkeypatch):
    from sunshine.models import ConsentEvidence

    monkeypatch.setenv("AUTH_REISSUES_PER_DAY", "2")
    apply_for_zhang(bank_env)
    sent = [tokens(ask())] + [tokens(ask("链接过期了重新发一下")) for _ in range(2)]
    assert [len(t) for t in sent] == [2, 2, 2]  # the first link and two reissues

    # the attack: asking again and again for fresh links
    refused = ask("链接过期了重新发一下")

    assert tokens(refused) == [] and "达到上限" in refused and "24小时内已重新发了2次" in refused
    assert "您本人的授权链接" in refused and "您的配偶李**的授权链接" in refused
    with unit_of_work(bank_env) as session:
        assert all(find_by_token(session, t) for t in sent[-1])  # the last links still work
        refusals = session.scalars(
            select(ConsentEvidence).where(ConsentEvidence.event == "refused").order_by(ConsentEvidence.id)
        ).all()
        assert [(r.detail["step"], r.detail["reason"]) for r in refusals] == [("reissue", "daily_limit")] * 2


def test_a_locked_party_gets_no_fresh_link_until_an_officer_releases_it(bank_env):
    from auth_flow.tokens import release_lock
    from sunshine.models import ApplicationEvent, Officer

    application_id = apply_for_zhang(bank_env)
    ask()
    with unit_of_work(bank_env) as session:
        spouse = session.scalar(select(Authorization).where(Authorization.party_role == "spouse"))
        spouse.status = "locked"

    # asking how things stand: the lock is told, no link is touched
    asked = ask("我老婆授权了没")
    assert "您的配偶李**的授权链接因核验失败次数过多已锁定" in asked and tokens(asked) == []
    assert len(pending(bank_env)) == 1

    # the attack: a fresh link for the locked party, just by asking the bot again
    text = ask("链接打不开了重新发一下")

    assert "您的配偶李**的授权链接因核验失败次数过多已锁定" in text and "客户经理核实后解锁" in text
    assert len(tokens(text)) == 1  # the applicant's own link only
    with unit_of_work(bank_env) as session:
        assert [
            a.party_role
            for a in session.scalars(
                select(Authorization).where(Authorization.status == "pending").order_by(Authorization.id)
            )
        ] == ["applicant"]
        officer = session.scalar(select(Officer).where(Officer.username == "officer01"))
        name = officer.display_name
        release_lock(session, session.scalar(select(Authorization).where(Authorization.status == "locked")), officer)
    with unit_of_work(bank_env) as session:
        history = session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application_id)
            .order_by(ApplicationEvent.id)
        ).all()
        released = [e for e in history if e.action == "authorization_released"]
        assert len(released) == 1 and name in released[0].reason and released[0].actor == name
    fresh = tokens(ask("重新发授权链接"))
    assert len(fresh) == 2


def test_the_other_parties_get_their_links_in_wechat_and_the_applicant_in_the_chat(bank_env):
    from rq import Queue

    from sunshine.jobs import queue_name
    from sunshine.redis import connect
    from sunshine.settings import load

    applications, _ = service()
    with unit_of_work(bank_env) as session:
        zhang, wang = by_openid(session, DEMO_OPENID), by_openid(session, "o_demo_wangchunhua")
        applications.apply(session, zhang.id, "guaranteed_farm_loan", 100_000, 24, "g-key", guarantor_id=wang.id)

    text = ask()

    cfg = load()
    queued = Queue(queue_name("o_demo_wangchunhua", cfg.worker_processes), connection=connect(cfg.redis_url)).jobs
    notices = [j.args for j in queued if j.func_name == "conversation.notices.deliver_notice"]
    own, spouse, guarantor = tokens(text)
    assert [(n[0], n[2], n[4]) for n in notices] == [
        ("o_demo_wangchunhua", "authorization_request", f"{LINK}{guarantor}")
    ]  # the spouse 李秀英 has no WeChat bound: the applicant forwards her link
    assert notices[0][1].startswith("张**申请贷款，需要您授权查询征信（担保人）")
