"""The web process: WeChat webhook, JSON APIs, H5 pages, officer console, health."""
from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from sunshine.protect import configure_logging
from sunshine.settings import Settings, load

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(SETTINGS=settings, SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", JSON_AS_ASCII=False)
    app.json.ensure_ascii = False

    from webhooks import api, console, health, wechat

    app.register_blueprint(wechat.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(console.api)
    app.register_blueprint(health.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return jsonify(error=exc.name, message=exc.description), exc.code
        return f"{exc.code} {exc.description}", exc.code, {"Content-Type": "text/plain; charset=utf-8"}

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    return app


def settings_of(app: Flask) -> Settings:
    return app.config["SETTINGS"]
