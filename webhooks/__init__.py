"""The web process: WeChat webhook, JSON APIs, H5 pages, officer console, health."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis
from flask import Flask, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Rule

from handoff.canned import load_canned_replies
from lending.data_files import data_file_problems
from sunshine.jobs import Jobs
from sunshine.protect import configure_logging
from sunshine.settings import ConfigError, Settings, load
from webhooks import api, console, contracts, health, mp, wechat, wxa_push

MAX_BODY_BYTES = 64 * 1024
# What the pages may load: their own scripts (and inline ones carrying this response's
# nonce), inline styles, their own images and QR codes (data:), the camera stream, fetch
# to this origin; never framed, no plugins, no <base>, forms only to this origin.
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"


class RowId(IntegerConverter):
    """`<int:...>` in every route: a number a database row id can be (PostgreSQL's integer);
    a larger one is an unknown page (404), never a database overflow."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


class LazyBuildRule(Rule):
    """werkzeug's rule, whose two URL builders (Python functions werkzeug generates and compiles
    for each rule) are compiled when a URL is first built from the rule, not when the app is made:
    the app has over a hundred rules and a process builds URLs from few of them."""

    def _compile_builder(self, append_unknown: bool = True) -> Any:
        compiled = None

        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown)
            return compiled(rule, *args, **kwargs)

        return build


class TemplateCode(BytecodeCache):
    """The templates' compiled code kept in memory, shared by every app this process makes
    (keyed by template name and source checksum, so an edited template is compiled again)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


class WebApp(Flask):
    """Flask, with URL builders compiled on first use and templates compiled once per process."""

    url_rule_class = LazyBuildRule
    jinja_options = {"bytecode_cache": TemplateCode()}


class ChineseJSON(DefaultJSONProvider):
    """JSON answers carry Chinese as itself, not as \\u escapes."""

    ensure_ascii = False


def csp_nonce() -> str:
    """This response's script nonce (templates: `<script nonce="{{ csp_nonce() }}">`)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


REDIS_DOWN = "系统暂时连不上缓存服务（Redis），这次操作没有完成。请稍后再试；一直这样请联系系统管理员。"


def create_app(settings: Settings | None = None, jobs: Jobs | None = None) -> Flask:
    """The web app; `jobs` enqueues work for the workers (default: on the settings' Redis)."""
    settings = settings or load()
    configure_logging(settings.log_level)
    problems = data_file_problems()
    if problems:  # a wrong tags, products or rules file stops the web app from starting
        raise ConfigError(*problems)
    app = WebApp(__name__)
    app.url_map.converters["int"] = RowId
    https = settings.public_base_url.startswith("https://")
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
    )
    app.json = ChineseJSON(app)
    if settings.trusted_proxies:  # the client address and scheme as the load balancer(s) saw them
        n = settings.trusted_proxies
        # Flask's documented way to add WSGI middleware; its annotations declare wsgi_app a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.extensions["jobs"] = jobs or Jobs(settings)
    # The officers' canned replies, checked here: a broken file stops the start, not a conversation.
    app.extensions["canned_replies"] = load_canned_replies()
    app.register_blueprint(wechat.bp)
    app.register_blueprint(wxa_push.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(contracts.bp)
    app.register_blueprint(mp.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(console.api)
    app.register_blueprint(health.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # Retry-After (429) and Allow (405) go with the answer.
        headers = [h for h in exc.get_headers() if h[0] != "Content-Type"]
        if request.path.startswith("/api/"):  # `code`: the machine-readable name (not_found, ...)
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error=exc.name, code=code, message=exc.description), exc.code, headers
        return f"{exc.code} {exc.description}", exc.code, headers + [("Content-Type", "text/plain; charset=utf-8")]

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError):
        # Redis unreachable (or refusing): a clear answer in Chinese, never a bare 500.
        logging.getLogger(__name__).error("Redis unavailable for %s: %s", request.path, exc)
        if request.path.startswith("/api/"):
            return jsonify(error="Service Unavailable", message=REDIS_DOWN), 503
        return REDIS_DOWN, 503, [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "30")]

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
        if https or request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", HSTS)
        return resp

    return app
