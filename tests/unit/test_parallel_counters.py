"""Counters under parallel requests: wrong identity checks and SMS codes on one authorization
token, name+ID guesses and wrong codes of one WeChat user. Each request in its own thread and
its own transaction, released together. On PostgreSQL (`make test-postgres`, or DATABASE_URL
naming one) this is the race that `attempts += 1` lost; on SQLite, whose writers queue at
BEGIN IMMEDIATE, it must hold all the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select

from auth_flow.identity import check_identity, send_sms_code
from auth_flow.tokens import AuthorizationError, StepRefused
from lending.binding import TOO_MANY_GUESSES, BindingRefused, BindLimits, code_sent, confirm_code, request_code
from sunshine.db import unit_of_work
from sunshine.models import Authorization, WeChatBindRequest
from tests.conftest import TEST_SECRET
from tests.unit.test_auth_flow import CLIENT, MAX

PARALLEL = 12


def in_parallel(url: str, step: Callable, n: int = PARALLEL) -> list:
    """Run `step(session)` in `n` threads at once, each in its own unit of work (committed even
    when the step is refused, as the web does); returns each outcome or refusal."""
    barrier, outcomes, lock = threading.Barrier(n), [], threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            with unit_of_work(url) as s:
                try:
                    outcome = step(s)
                except (StepRefused, BindingRefused) as exc:
                    outcome = exc
        except AuthorizationError as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == n
    return outcomes


def test_parallel_wrong_identity_checks_never_pass_the_limit(demo_settings, application):
    url, (_, tokens, names) = demo_settings.database_url, application
    token = tokens["applicant"]  # 张建国, bound to o_demo_zhangjianguo

    outcomes = in_parallel(
        url,
        lambda s: check_identity(
            s, TEST_SECRET, token, names["applicant"], "000000", CLIENT, MAX, wechat_openid="o_demo_zhangjianguo"
        ),
    )

    checked = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(checked) == MAX  # the rest found the token locked
    assert sorted(o.attempts_left for o in checked) == list(range(MAX))
    assert sum(1 for o in checked if o.locked) == 1
    with unit_of_work(url) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "applicant"))
        assert (auth.attempts, auth.status) == (MAX, "locked")


def test_parallel_requests_for_an_sms_code_send_one_text(demo_settings, application, sms):
    url, (_, tokens, _) = demo_settings.database_url, application
    client, texts = sms

    outcomes = in_parallel(url, lambda s: send_sms_code(s, TEST_SECRET, tokens["spouse"], client, CLIENT))

    assert len([o for o in outcomes if o == "139****0002"]) == 1  # the others: wait 60 seconds
    assert len(texts) == 1
    with unit_of_work(url) as s:
        assert s.scalar(select(Authorization.sms_sends).where(Authorization.party_role == "spouse")) == 1


def test_parallel_name_and_id_guesses_of_one_wechat_user_never_pass_the_limit(demo_settings):
    limits, url = BindLimits(), demo_settings.database_url
    outcomes = in_parallel(
        url,
        lambda s: request_code(s, TEST_SECRET, "o_fast", "周桂芳 321283197009090663", limits, lambda p, t: None),
    )
    assert outcomes.count(code_sent(limits)) == limits.guesses_per_day
    assert [str(o) for o in outcomes].count(TOO_MANY_GUESSES) == PARALLEL - limits.guesses_per_day


def test_parallel_wrong_codes_never_pass_the_limit(demo_settings, sms):
    limits, url = BindLimits(), demo_settings.database_url
    with unit_of_work(url) as s:
        request_code(s, TEST_SECRET, "o_fast", "陈立新 321283196802010556", limits, lambda p, t: None)

    outcomes = in_parallel(url, lambda s: confirm_code(s, TEST_SECRET, "o_fast", "000000", limits, lambda p, t: None))

    evaluated = [o for o in outcomes if "验证码不对" in str(o)]
    assert len(evaluated) == limits.code_attempts - 1  # and the last allowed one killed the code
    with unit_of_work(url) as s:
        request = s.scalar(select(WeChatBindRequest).where(WeChatBindRequest.openid == "o_fast"))
        assert (request.wrong_codes, request.status) == (limits.code_attempts, "failed")
