"""The WeCom API emulator: the endpoints the bank calls, in WeCom's JSON shapes.

- `GET /cgi-bin/gettoken?corpid=&corpsecret=`: an access_token (40013 unknown
  corp, 40001 wrong secret).
- `POST /cgi-bin/message/send?access_token=`: an application message
  (40014/42001 bad or expired token, 40056 wrong agentid, 40008 unknown
  msgtype, 44004 empty text); when the emulator is given its `members`, others
  come back in `invaliduser` as WeCom does (and nothing is delivered to them).

Control endpoints for tests and people:
- `GET /_emulator/messages?touser=USERID`: messages delivered to that member, oldest first.
- `POST /_emulator/expire_tokens`: every token issued so far answers 42001.
- `POST /_emulator/reset`: forget tokens and messages.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import timezone

from flask import Flask, jsonify, request

from sunshine import clock

ERRMSG = {
    40001: "invalid credential",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    42001: "access_token expired",
    44004: "empty content",
    47001: "data format error",
}


@dataclass
class WeComState:
    corpid: str
    secret: str
    agentid: int
    members: set[str] | None  # None: every userid is a member
    tokens: dict[str, bool] = field(default_factory=dict)  # token -> still valid
    messages: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(errcode: int):
    return jsonify(errcode=errcode, errmsg=ERRMSG[errcode])


def create_app(settings=None, *, members: set[str] | None = None) -> Flask:
    if settings is None:
        from sunshine.settings import load

        settings = load()
    state = WeComState(settings.wecom_corpid, settings.wecom_secret, settings.wecom_agentid, members)
    app = Flask("emulators.wecom")
    app.extensions["wecom_emulator"] = state

    @app.get("/cgi-bin/gettoken")
    def gettoken():
        if request.args.get("corpid") != state.corpid:
            return _error(40013)
        if not secrets.compare_digest(request.args.get("corpsecret", ""), state.secret):
            return _error(40001)
        token = secrets.token_urlsafe(32)
        with state.lock:
            state.tokens[token] = True
        return jsonify(errcode=0, errmsg="ok", access_token=token, expires_in=7200)

    @app.post("/cgi-bin/message/send")
    def message_send():
        with state.lock:
            valid = state.tokens.get(request.args.get("access_token", ""))
        if valid is None:
            return _error(40014)
        if not valid:
            return _error(42001)
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return _error(47001)
        if body.get("agentid") != state.agentid:
            return _error(40056)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "textcard", "markdown"):
            return _error(40008)
        payload = body.get(msgtype) or {}
        content = payload.get("content") or payload.get("description")
        if not content:
            return _error(44004)
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        invalid = [u for u in users if state.members is not None and u not in state.members]
        at = clock.utcnow().replace(tzinfo=timezone.utc).isoformat()
        with state.lock:
            for user in users:
                if user not in invalid:
                    state.messages.append(
                        {
                            "id": len(state.messages) + 1,
                            "touser": user,
                            "msgtype": msgtype,
                            "content": content,
                            "agentid": state.agentid,
                            "received_at": at,
                        }
                    )
        return jsonify(errcode=0, errmsg="ok", invaliduser="|".join(invalid), invalidparty="", invalidtag="")

    @app.get("/_emulator/messages")
    def messages():
        touser = request.args.get("touser")
        with state.lock:
            return jsonify([m for m in state.messages if touser in (None, m["touser"])])

    @app.post("/_emulator/expire_tokens")
    def expire_tokens():
        with state.lock:
            for token in state.tokens:
                state.tokens[token] = False
            return jsonify(ok=True, expired=len(state.tokens))

    @app.post("/_emulator/reset")
    def reset():
        with state.lock:
            state.tokens.clear()
            state.messages.clear()
        return jsonify(ok=True)

    @app.get("/healthz")
    def healthz():
        return jsonify(ok=True)

    return app
