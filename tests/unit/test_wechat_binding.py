"""Binding a WeChat user to a customer (lending.binding) against the demo village in a real
database and the SMS-gateway emulator over HTTP: the attacks first, then their refusal.

The finding: anyone could bind their WeChat to a customer with a name and an ID number, the
answers told whether a name+ID was a customer, and a spouse's ID was guessed in 23 tries.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from clients.sms import SmsClient
from lending.binding import (
    CODE_DEAD,
    TOO_MANY_GUESSES,
    BindingRefused,
    BindLimits,
    awaiting_code,
    background_sms,
    code_sent,
    confirm_code,
    read_code,
    request_code,
)
from lending.customers import IdentificationFailed, by_id_number, by_openid
from lending.identity import check_digit
from sunshine.clock import travel_to, utcnow
from sunshine.counters import bump
from sunshine.db import engine_for, unit_of_work
from sunshine.models import AuditEntry, Customer
from tests.conftest import TEST_SECRET

LIMITS = BindLimits()  # the defaults: 5 guesses per WeChat user, 3 texts per ID, 3 wrong codes
STRANGER = "o_stranger_next_door"
CHEN, CHEN_ID, CHEN_PHONE = "陈立新", "321283196802010556", "13912340005"  # not bound in the demo
ZHOU, ZHOU_ID, ZHOU_PHONE = "周桂芳", "321283197009090663", "13912340006"  # his wife, not bound
ZHANG, ZHANG_ID, ZHANG_PHONE = "张建国", "321283197503120119", "13912340001"  # bound to o_demo_zhangjianguo


@pytest.fixture
def gateway(sms):
    """A sender to the SMS emulator (synchronous here: the order of texts is what is tested)
    and what the emulator received."""
    client, received = sms
    return (lambda phone, text: client.send(phone, text)), received


def ask(url, openid, text, send):
    """The answer to a name+ID message; a refusal is committed as the bot's actions do (what
    was counted stays counted)."""
    with unit_of_work(url) as s:
        try:
            return request_code(s, TEST_SECRET, openid, text, LIMITS, send)
        except BindingRefused as exc:
            return str(exc)


def confirm(url, openid, code, send):
    """The customer's masked name when bound; the refusal's message otherwise."""
    with unit_of_work(url) as s:
        try:
            return confirm_code(s, TEST_SECRET, openid, code, LIMITS, send).name
        except BindingRefused as exc:
            return str(exc)


def texts_to(received, phone) -> list[str]:
    return [m["content"] for m in received if m["phone"] == phone]


def code_in(text: str) -> str:
    found = re.search(r"验证码为(\d{6})", text)
    assert found, text
    return found.group(1)


def bound_to(url, openid) -> str | None:
    with unit_of_work(url) as s:
        customer = by_openid(s, openid)
        return customer.name if customer else None


def with_check_digit(first17: str) -> str:
    return first17 + check_digit(first17)


def candidates_for_zhou() -> list[str]:
    """What a stranger tries for 周桂芳 knowing her name, county and birth year: IDs with a
    valid check digit, the real one 23rd (as in the finding)."""
    wrong = [with_check_digit(f"32128319700909{n:03d}") for n in range(0, 60)]
    wrong = [w for w in wrong if w != ZHOU_ID][:22]
    return [*wrong, ZHOU_ID]


# --- the attack: guessing a spouse's ID number ------------------------------------------


def test_brute_force_of_a_name_and_id_is_stopped_after_the_limit(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    answers = [ask(url, STRANGER, f"{ZHOU} {candidate}", send) for candidate in candidates_for_zhou()]

    assert answers[: LIMITS.guesses_per_day] == [code_sent(LIMITS)] * LIMITS.guesses_per_day
    assert answers[LIMITS.guesses_per_day :] == [TOO_MANY_GUESSES] * (23 - LIMITS.guesses_per_day)
    # The right ID (the 23rd guess) was never looked at: no text to her phone, nothing bound.
    assert texts_to(received, ZHOU_PHONE) == []
    assert bound_to(url, STRANGER) is None
    with unit_of_work(url) as s:
        assert by_id_number(s, TEST_SECRET, ZHOU_ID).wechat_openid is None
        assert (
            len(
                s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.action == "customer.wechat_bind_limited")
                    .order_by(AuditEntry.id)
                ).all()
            )
            == 18
        )


def test_a_right_guess_within_the_limit_only_sends_a_code_to_her_phone(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    assert ask(url, STRANGER, f"{ZHOU} {ZHOU_ID}", send) == code_sent(LIMITS)

    assert len(texts_to(received, ZHOU_PHONE)) == 1  # the code is on her phone, not in the chat
    for guess in ("000000", "123456", "999999"):
        assert confirm(url, STRANGER, guess, send) != ZHOU
    assert confirm(url, STRANGER, code_in(texts_to(received, ZHOU_PHONE)[0]), send) == CODE_DEAD  # used up
    assert bound_to(url, STRANGER) is None


def test_malformed_messages_are_explained_and_not_counted(demo_settings, gateway):
    send, _ = gateway
    url = demo_settings.database_url
    for text, why in (
        (f"{ZHOU} 321283197009090664", "校验位"),
        (ZHOU, "18位身份证号"),
        (ZHOU_ID, "姓名"),
    ):
        with pytest.raises(IdentificationFailed, match=why):
            ask(url, STRANGER, text, send)
    assert ask(url, STRANGER, f"{ZHOU} {ZHOU_ID}", send) == code_sent(LIMITS)  # no guess used up


# --- no enumeration: one answer, one shape --------------------------------------------------


def _statements(url, openid, text, send) -> tuple[str, list[str], int]:
    """The answer, the SQL statements run (their first words), and how many texts were sent
    before the commit."""
    seen: list[str] = []
    sent_before_commit: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()[:3]))

    engine = engine_for(url)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with unit_of_work(url) as s:
            answer = request_code(s, TEST_SECRET, openid, text, LIMITS, lambda p, t: sent_before_commit.append(t))
            before = len(sent_before_commit)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return answer, seen, before


def test_customer_and_stranger_get_the_same_answer_through_the_same_statements(demo_settings, gateway):
    send, _ = gateway
    url = demo_settings.database_url
    cases = {
        "an unbound customer": f"{CHEN} {CHEN_ID}",
        "a customer's ID with another name": f"王五 {CHEN_ID}",
        "an ID the bank does not know": f"{CHEN} {with_check_digit('32128319800101123')}",
        "a customer bound to another WeChat": f"{ZHANG} {ZHANG_ID}",
    }
    shapes = {}
    for n, (case, text) in enumerate(cases.items()):
        answer, statements, sent_before_commit = _statements(url, f"o_asker_{n}", text, send)
        assert answer == code_sent(LIMITS), case
        assert sent_before_commit == 0, case  # every text goes out after the answer is decided
        assert "INSERT INTO wechat_bind_requests" in statements, case
        shapes[case] = statements
    assert len({tuple(s) for s in shapes.values()}) == 1, shapes


# --- the code ------------------------------------------------------------------------------------


def test_the_right_code_binds_and_the_phone_on_file_is_told(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    ask(url, STRANGER, f"我叫{CHEN}身份证{CHEN_ID}", send)
    (sms,) = texts_to(received, CHEN_PHONE)
    assert sms.startswith("【阳光农村商业银行】您的微信绑定验证码为") and "5分钟内有效" in sms

    assert confirm(url, STRANGER, code_in(sms), send) == CHEN
    assert bound_to(url, STRANGER) == CHEN
    notice = texts_to(received, CHEN_PHONE)[-1]
    assert "绑定微信" in notice and "如非本人操作" in notice and "验证码" not in notice
    with unit_of_work(url) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "customer.wechat_bound"))
        assert entry is not None and entry.detail == {"how": "sms_code", "app": "oa"}


def test_read_code_takes_a_lone_six_digit_number():
    assert read_code("123456") == "123456"
    assert read_code("验证码是 654321") == "654321"
    assert read_code("12345") is None and read_code("1234567") is None
    assert read_code("123456 654321") is None and read_code("借5万 123456") is None
    assert read_code(CHEN_ID) is None


def test_wrong_codes_kill_the_code(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    ask(url, STRANGER, f"{CHEN} {CHEN_ID}", send)
    code = code_in(texts_to(received, CHEN_PHONE)[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    assert "还可以再试2次" in confirm(url, STRANGER, wrong, send)
    assert "还可以再试1次" in confirm(url, STRANGER, wrong, send)
    assert confirm(url, STRANGER, wrong, send) == CODE_DEAD
    assert confirm(url, STRANGER, code, send) == CODE_DEAD  # the right one, too late
    assert bound_to(url, STRANGER) is None
    with unit_of_work(url) as s:
        assert not awaiting_code(s, STRANGER)


def test_an_expired_code_does_not_bind(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    ask(url, STRANGER, f"{CHEN} {CHEN_ID}", send)
    code = code_in(texts_to(received, CHEN_PHONE)[0])
    with travel_to(utcnow() + timedelta(seconds=LIMITS.code_ttl_s + 1)):
        assert confirm(url, STRANGER, code, send) == CODE_DEAD
    assert bound_to(url, STRANGER) is None


def test_a_code_works_only_for_its_own_id_and_wechat(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    # 陈立新 gets a code on his own phone, then asks for his wife's binding and types his code.
    ask(url, "o_chen", f"{CHEN} {CHEN_ID}", send)
    own_code = code_in(texts_to(received, CHEN_PHONE)[0])
    ask(url, "o_chen", f"{ZHOU} {ZHOU_ID}", send)
    assert confirm(url, "o_chen", own_code, send) != ZHOU
    assert bound_to(url, "o_chen") is None
    # A code texted for one WeChat user binds no other.
    ask(url, "o_chen_2", f"{CHEN} {CHEN_ID}", send)
    code = code_in(texts_to(received, CHEN_PHONE)[-1])
    assert confirm(url, STRANGER, code, send) == CODE_DEAD  # the stranger asked for nothing
    assert bound_to(url, STRANGER) is None
    assert confirm(url, "o_chen_2", code, send) == CHEN


def test_an_existing_binding_is_not_replaced_and_its_owner_is_told(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    assert ask(url, STRANGER, f"{ZHANG} {ZHANG_ID}", send) == code_sent(LIMITS)

    (notice,) = texts_to(received, ZHANG_PHONE)
    assert "已绑定其他微信" in notice and "未作任何更改" in notice and "验证码" not in notice
    for guess in ("000000", "111111", "222222"):
        assert confirm(url, STRANGER, guess, send) != ZHANG
    assert bound_to(url, "o_demo_zhangjianguo") == ZHANG and bound_to(url, STRANGER) is None


def test_texts_about_one_id_number_are_limited_per_day(demo_settings, gateway):
    send, received = gateway
    url = demo_settings.database_url
    for n in range(LIMITS.codes_per_id_per_day + 2):  # from several WeChat accounts
        assert ask(url, f"o_bomber_{n}", f"{CHEN} {CHEN_ID}", send) == code_sent(LIMITS)
    assert len(texts_to(received, CHEN_PHONE)) == LIMITS.codes_per_id_per_day


def test_a_bound_wechat_user_is_told_so(demo_settings, gateway):
    send, _ = gateway
    assert "已经绑定" in ask(demo_settings.database_url, "o_demo_zhangjianguo", f"{CHEN} {CHEN_ID}", send)


def test_event_counters_count_in_fixed_windows(db_url):
    with unit_of_work(db_url) as s:
        assert [bump(s, "k", 60) for _ in range(3)] == [1, 2, 3]
        assert bump(s, "other", 60) == 1
    with travel_to(utcnow() + timedelta(seconds=61)), unit_of_work(db_url) as s:
        assert bump(s, "k", 60) == 1  # a new window


def test_customers_are_unchanged_by_failed_binding(demo_settings, gateway):
    send, _ = gateway
    url = demo_settings.database_url
    with unit_of_work(url) as s:
        before = {c.id: c.wechat_openid for c in s.scalars(select(Customer).order_by(Customer.id))}
    for text in (f"{ZHOU} {ZHOU_ID}", f"{ZHANG} {ZHANG_ID}", f"王五 {CHEN_ID}"):
        ask(url, STRANGER, text, send)
        confirm(url, STRANGER, "123456", send)
    with unit_of_work(url) as s:
        assert {c.id: c.wechat_openid for c in s.scalars(select(Customer).order_by(Customer.id))} == before


def test_a_gateway_failure_is_logged_and_the_answer_stands(demo_settings, closed_address, caplog):
    send = background_sms(SmsClient(closed_address, "k"))
    assert ask(demo_settings.database_url, STRANGER, f"{CHEN} {CHEN_ID}", send) == code_sent(LIMITS)
    deadline = time.monotonic() + 5
    while "not sent" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "a WeChat-binding text was not sent" in caplog.text
    assert "13912340005" not in caplog.text
