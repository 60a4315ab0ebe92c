"""Security headers on every page and API answer, a CSP the pages keep to (no inline script
without this response's nonce, no inline event handlers), and the session cookie's flags."""

from __future__ import annotations

import re
from datetime import timedelta

from auth_flow.tokens import issue
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.settings import ROOT
from tests.security.test_access import log_in


def a_token(settings) -> str:
    with unit_of_work(settings.database_url) as s:
        customer = by_openid(s, "o_demo_zhangjianguo")
        return issue(s, customer, customer, "applicant", "bot", timedelta(minutes=30)).token


def csp_of(resp) -> dict[str, str]:
    return {d.split()[0]: d.partition(" ")[2] for d in resp.headers["Content-Security-Policy"].split("; ")}


def check_page(resp) -> None:
    """The headers of an HTML page, and every <script> in it allowed by its CSP."""
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    csp = csp_of(resp)
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    nonce = re.search(r"'nonce-([^']+)'", csp["script-src"]).group(1)
    for tag in re.findall(r"<script[^>]*>", resp.data.decode()):
        assert f'nonce="{nonce}"' in tag or re.search(r'src="/[^/]', tag), tag
    assert not re.search(r"\son[a-z]+=", resp.data.decode())  # no inline event handlers
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"


def test_pages_carry_a_csp_their_scripts_keep_to(make_client, demo_settings):
    client = make_client()
    token = a_token(demo_settings)
    check_page(client.get("/console/login"))
    with client.session_transaction() as session:
        session["wechat_openid"] = "o_demo_zhangjianguo"
    first, second = client.get(f"/auth/{token}"), client.get(f"/auth/{token}")
    check_page(first)
    assert "<script nonce=" in first.data.decode() and csp_of(first)["script-src"] != csp_of(second)["script-src"]
    assert "mediastream:" in csp_of(first)["media-src"] and csp_of(first)["connect-src"] == "'self'"
    check_page(log_in(make_client(), "officer01").get("/console"))
    check_page(log_in(make_client(), "supervisor01").get("/console"))  # with the officer filter


def test_no_template_uses_inline_handlers_or_a_script_without_the_nonce():
    for path in (ROOT / "webhooks" / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\son[a-z]+=", text), path
        for tag in re.findall(r"<script[^>]*>", text):
            assert "csp_nonce()" in tag or "src=" in tag, (path, tag)


def test_api_answers_and_errors_are_not_sniffable_and_not_html(make_client):
    client = make_client()
    for resp in (
        client.get("/api/openapi.json"),
        client.get("/api/authorizations/nope"),
        client.get("/healthz"),
        client.get("/api/console/queue"),
    ):
        assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.mimetype == "application/json"
        assert "Strict-Transport-Security" not in resp.headers  # plain http: no HSTS


def test_over_https_hsts_and_a_secure_session_cookie(make_client, demo_settings):
    client = make_client(public_base_url="https://credit.bank.example")
    resp = client.get("/console/login")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    plain = make_client().get("/console/login").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    # behind a trusted proxy that terminates TLS
    proxied = make_client(trusted_proxies=1).get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert (
        "Strict-Transport-Security" not in make_client().get("/healthz", headers={"X-Forwarded-Proto": "https"}).headers
    )
