"""Authorization tokens: unguessable, kept only as a hash, bound to one party's request,
and used up by consent (auth_flow.tokens and the H5 API)."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, text

from auth_flow.tokens import issue
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import Authorization, Base, ConsentEvidence
from tests.unit.test_auth_flow import id_digits

STEPS = ("identity", "sms-code", "biometric-consent", "face", "consent")


def test_tokens_are_random_192_bit_and_only_their_hash_is_stored(demo_settings):
    with unit_of_work(demo_settings.database_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        issued = [issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30)) for _ in range(300)]
        tokens = [i.token for i in issued]
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens) and len(set(tokens)) == 300
        # 32 URL-safe characters are 192 random bits: every character of the alphabet turns up
        counts = Counter("".join(tokens))
        assert len(counts) == 64 and max(counts.values()) < 3 * 300 * 32 / 64
        assert all(i.authorization.token_hash == hashlib.sha256(i.token.encode()).hexdigest() for i in issued)
        dump = " ".join(
            str(v)
            for table in Base.metadata.sorted_tables
            for row in s.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608  our tables
            for v in row
        )
    assert not any(t in dump for t in tokens)


def test_progress_belongs_to_the_request_not_to_the_browser(make_client, demo_settings, application):
    _, tokens, names = application
    client = make_client()
    with client.session_transaction() as session:
        session["wechat_openid"] = "o_demo_zhangjianguo"
    with unit_of_work(demo_settings.database_url) as s:
        digits = id_digits(s, tokens["applicant"])
    base = "/api/authorizations/{}".format
    resp = client.post(
        f"{base(tokens['applicant'])}/identity",
        json={"name": names["applicant"], "id_digits": digits, "party_role": "spouse", "application_id": 1},
    )
    assert resp.json["ok"]
    # the same browser, the spouse's link: identity passed for the applicant does not carry over
    resp = client.post(f"{base(tokens['spouse'])}/biometric-consent", json={"agree": True})
    assert resp.status_code == 409
    assert client.get(base(tokens["spouse"])).json["steps"] == {
        "identity": False,
        "biometric_consent": False,
        "face": False,
    }
    with unit_of_work(demo_settings.database_url) as s:  # extra fields in the body changed nothing
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "applicant"))
        assert auth.party_role == "applicant" and auth.party_name == names["applicant"]


def test_a_used_token_opens_nothing_any_more(make_client, demo_settings, application):
    _, tokens, _ = application
    with unit_of_work(demo_settings.database_url) as s:
        s.scalar(select(Authorization).where(Authorization.party_role == "spouse")).status = "consented"
    client = make_client()
    base = f"/api/authorizations/{tokens['spouse']}"
    for step in STEPS:
        if step == "face":
            resp = client.post(
                f"{base}/face", data={"frames": (io.BytesIO(b"x"), "f.jpg")}, content_type="multipart/form-data"
            )
        else:
            resp = client.post(f"{base}/{step}", json={"agree": True, "name": "x", "id_digits": "123456"})
        assert resp.status_code == 404 and "已使用" in resp.json["message"], step
    assert client.get(base).status_code == 404 and client.get(f"{base}/qr.png").status_code == 404
    with unit_of_work(demo_settings.database_url) as s:
        events = s.scalars(select(ConsentEvidence.event).order_by(ConsentEvidence.id)).all()
        assert events and set(events) == {"refused"}
