"""The bank's SMS gateway, emulated: the wire format of clients.sms, texts kept in memory.

    POST /v1/sms/send  Authorization: Bearer KEY  {"phone", "content"}
      200 {"message_id", "status": "accepted"}
      400 {"error": {"code": "invalid_request" | "invalid_phone" | "content_too_long", "message"}}
      401 {"error": {"code": "unauthorized", ...}}   (wrong or missing key)

Control endpoints:
    GET  /_emulator/messages?phone=13912340002   texts sent to that phone (all without), oldest first
    POST /_emulator/faults {"count": 1, "status": 503}   the next `count` sends fail with HTTP `status`
    POST /_emulator/reset
    GET  /healthz
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import timezone

from flask import Flask, jsonify, request

from sunshine import clock

PHONE_RE = re.compile(r"1[3-9]\d{9}")
MAX_CONTENT = 500


def _error(status: int, code: str, message: str):
    return jsonify(error={"code": code, "message": message}), status


def create_app(settings=None, api_key: str | None = None) -> Flask:
    """A fresh emulator accepting `api_key` (default: the SMS_API_KEY setting)."""
    if api_key is None:
        if settings is None:
            from sunshine.settings import load

            settings = load()
        api_key = settings.sms_api_key
    app = Flask("emulators.sms")
    lock = threading.Lock()
    state = {"messages": [], "faults": []}
    app.extensions["sms_emulator"] = state

    @app.post("/v1/sms/send")
    def send():
        with lock:
            fault = state["faults"].pop(0) if state["faults"] else None
        if fault:
            return _error(fault, "unavailable", "gateway temporarily unavailable")
        if not secrets.compare_digest(request.headers.get("Authorization", ""), f"Bearer {api_key}"):
            return _error(401, "unauthorized", "wrong or missing API key")
        body = request.get_json(force=True, silent=True)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("phone"), str)
            or not isinstance(body.get("content"), str)
            or not body["content"]
        ):
            return _error(400, "invalid_request", 'body must be {"phone": str, "content": str}')
        if not PHONE_RE.fullmatch(body["phone"]):
            return _error(400, "invalid_phone", "phone must be an 11-digit mainland mobile number")
        if len(body["content"]) > MAX_CONTENT:
            return _error(400, "content_too_long", f"content is limited to {MAX_CONTENT} characters")
        message = {
            "message_id": secrets.token_hex(8),
            "phone": body["phone"],
            "content": body["content"],
            "sent_at": clock.utcnow().replace(tzinfo=timezone.utc).isoformat(timespec="seconds"),
        }
        with lock:
            state["messages"].append(message)
        return jsonify(message_id=message["message_id"], status="accepted")

    @app.get("/_emulator/messages")
    def messages():
        phone = request.args.get("phone")
        with lock:
            return jsonify([m for m in state["messages"] if phone is None or m["phone"] == phone])

    @app.post("/_emulator/faults")
    def faults():
        spec = request.get_json(force=True, silent=True)
        try:
            count, status = int(spec.get("count", 1)), int(spec.get("status", 503))
        except (AttributeError, TypeError, ValueError):
            return jsonify(error='body must be {"count": int, "status": int}'), 400
        with lock:
            state["faults"].extend([status] * count)
        return jsonify(ok=True, pending=len(state["faults"]))

    @app.post("/_emulator/reset")
    def reset():
        with lock:
            state["messages"].clear()
            state["faults"].clear()
        return jsonify(ok=True)

    @app.get("/healthz")
    def healthz():
        return jsonify(ok=True)

    return app
