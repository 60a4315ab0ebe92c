"""`/healthz` (the process is up), `/readyz` (every dependency answers), `/metrics`.

/readyz and /metrics tell which dependency is down and how busy the bank is: only callers
from INTERNAL_NETWORKS or with INTERNAL_TOKEN get them; to anyone else they do not exist (404)."""

from __future__ import annotations

import requests
from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text

from sunshine.db import engine_for
from sunshine.guard import internal_caller
from sunshine.metrics import render
from sunshine.redis import connect

bp = Blueprint("health", __name__)
PROBE_TIMEOUT_S = 2.0
INTERNAL_ENDPOINTS = ("health.readyz", "health.metrics")


@bp.before_request
def _internal_only():
    if request.endpoint in INTERNAL_ENDPOINTS and not internal_caller(
        current_app.config["SETTINGS"], request.remote_addr, request.headers.get("Authorization")
    ):
        abort(404)


def _database(s) -> None:
    with engine_for(s.database_url).connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis(s) -> None:
    connect(s.redis_url).ping()


def _http(url: str) -> None:
    requests.get(url, timeout=PROBE_TIMEOUT_S).raise_for_status()


def dependency_status(s) -> dict[str, str]:
    """'ok' or the reason, for each dependency the web process needs."""
    checks = {
        "database": lambda: _database(s),
        "redis": lambda: _redis(s),
        "rasa": lambda: _http(s.rasa_url.rstrip("/") + "/"),
        "action_server": lambda: _http(s.action_server_url.rstrip("/") + "/health"),
    }
    status = {}
    for name, check in checks.items():
        try:
            check()
            status[name] = "ok"
        except Exception as exc:  # any failure means not ready; the type says which
            status[name] = f"unavailable: {type(exc).__name__}"
    return status


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    status = dependency_status(current_app.config["SETTINGS"])
    ready = all(v == "ok" for v in status.values())
    return jsonify(status="ready" if ready else "not ready", checks=status), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    return Response(render(connect(current_app.config["SETTINGS"].redis_url)), mimetype="text/plain; version=0.0.4")
