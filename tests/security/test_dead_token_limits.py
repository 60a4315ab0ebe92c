"""Steps posted to a dead authorization token (expired, used, superseded, locked) are refused and
each refusal is an evidence record: they are rate-limited per token and per client address, so
that posting to a dead token cannot fill the consent-evidence table."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from auth_flow.tokens import issue
from lending.customers import by_openid
from sunshine.clock import utcnow
from sunshine.db import unit_of_work
from sunshine.models import ConsentEvidence
from sunshine.ratelimit import DEAD_TOKEN_STEPS, DEAD_TOKEN_STEPS_BY_CLIENT


def tokens(settings, n: int, expired: bool = True) -> list[str]:
    with unit_of_work(settings.database_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        issued = [issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30)) for _ in range(n)]
        for i in issued:
            if expired:
                i.authorization.expires_at = utcnow() - timedelta(minutes=1)
        return [i.token for i in issued]


def evidence_records(settings) -> int:
    with unit_of_work(settings.database_url) as s:
        return s.scalar(select(func.count(ConsentEvidence.id))) or 0


def post(make_client, ip: str, token: str):
    client = make_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client.post(f"/api/authorizations/{token}/biometric-consent", json={"agree": True})


def test_a_dead_token_records_a_few_refusals_then_answers_429_from_any_address(make_client, demo_settings):
    (dead,) = tokens(demo_settings, 1)
    for i in range(DEAD_TOKEN_STEPS.limit):  # each from another address: the per-address limit never bites
        resp = post(make_client, f"198.51.100.{i + 1}", dead)
        assert resp.status_code == 404 and "已过期" in resp.json["message"]
    assert evidence_records(demo_settings) == DEAD_TOKEN_STEPS.limit
    resp = post(make_client, "198.51.100.200", dead)
    assert resp.status_code == 429 and resp.json["message"] == DEAD_TOKEN_STEPS.message
    assert 1 <= int(resp.headers["Retry-After"]) <= DEAD_TOKEN_STEPS.window_s
    assert evidence_records(demo_settings) == DEAD_TOKEN_STEPS.limit  # nothing more written
    (live,) = tokens(demo_settings, 1, expired=False)  # the same address, a live token: not affected
    resp = post(make_client, "198.51.100.200", live)  # reaches the step: identity comes first
    assert resp.status_code == 409 and "请先核对" in resp.json["message"]


def test_one_address_posting_to_many_dead_tokens_is_stopped(make_client, demo_settings):
    dead = tokens(demo_settings, DEAD_TOKEN_STEPS_BY_CLIENT.limit + 1)
    for token in dead[:-1]:
        assert post(make_client, "203.0.113.50", token).status_code == 404
    resp = post(make_client, "203.0.113.50", dead[-1])
    assert resp.status_code == 429 and resp.json["message"] == DEAD_TOKEN_STEPS_BY_CLIENT.message
    assert evidence_records(demo_settings) == DEAD_TOKEN_STEPS_BY_CLIENT.limit
    assert post(make_client, "203.0.113.51", dead[-1]).status_code == 404  # another address still gets its answer
