"""The `/_emulator/...` control endpoints for tests and people, and `/healthz`."""

from __future__ import annotations

import secrets

from flask import Blueprint, request

from emulators.wechat.api.sns import CODE_RE
from emulators.wechat.api.state import Fault
from emulators.wechat.api.wire import answer, state

control = Blueprint("control", __name__)


@control.get("/healthz")
def healthz():
    return answer({"ok": True})


@control.get("/_emulator/messages")
def messages():
    try:
        since = int(request.args.get("since", "0") or 0)
    except ValueError:
        return answer({"error": "since must be a message id"}, 400)
    return answer(state().messages_for(request.args.get("touser") or None, since))


@control.route("/_emulator/faults", methods=["GET", "POST", "DELETE"])
def faults():
    if request.method == "POST":
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict):
            return answer({"error": "body must be a JSON object"}, 400)
        try:
            fault = Fault(
                errcode=int(spec.get("errcode") or 0),
                count=int(spec.get("count", 1)),
                delay=float(spec.get("delay", 0)),
                path=spec.get("path") or None,
                status=int(spec["status"]) if spec.get("status") else None,
                errmsg=spec.get("errmsg"),
            )
        except (TypeError, ValueError):
            return answer({"error": "errcode, count, status must be integers, delay a number"}, 400)
        if fault.count < 1 or fault.delay < 0:
            return answer({"error": "count must be >= 1 and delay >= 0"}, 400)
        state().add_fault(fault)
    elif request.method == "DELETE":
        state().clear_faults()
    return answer({"ok": True, "pending": state().pending_faults()})


@control.post("/_emulator/reset")
def reset():
    state().reset()
    return answer({"ok": True})


@control.post("/_emulator/expire_tokens")
def expire_tokens():
    spec = request.get_json(force=True, silent=True) or {}
    n = state().expire_tokens(spec.get("appid") if isinstance(spec, dict) else None)
    return answer({"ok": True, "expired": n})


@control.get("/_emulator/calls")
def calls():
    return answer(state().calls_made())


@control.get("/_emulator/qrcodes")
def qrcodes():
    return answer(state().qrcodes_made())


@control.get("/_emulator/wxacodes")
def wxacodes():
    return answer(state().wxacodes_made())


@control.post("/_emulator/jscodes")
def jscodes():
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict) or not spec.get("openid"):
        return answer({"error": 'body must be {"openid": ..., "code": optional, "unionid": optional}'}, 400)
    code = spec.get("code") or secrets.token_hex(16)
    if not CODE_RE.fullmatch(code):
        return answer({"error": "code must be 1-128 letters, digits, '_' or '-'"}, 400)
    state().add_jscode(code, spec["openid"], spec.get("unionid"))
    return answer({"code": code, "openid": spec["openid"]})


@control.post("/_emulator/oauth_user")
def oauth_user():
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict) or not (spec.get("openid") is None or isinstance(spec["openid"], str)):
        return answer({"error": 'body must be {"openid": str | null}'}, 400)
    return answer({"openid": state().set_oauth_user(spec.get("openid") or None)})


@control.post("/_emulator/config")
def config():
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict):
        return answer({"error": "body must be a JSON object"}, 400)
    emulator = state()
    try:
        ttl = int(spec.get("token_ttl_s", emulator.token_ttl_s))
        grace = int(spec.get("token_grace_s", emulator.token_grace_s))
        pages = spec.get("wxa_pages", sorted(emulator.wxa_pages) if emulator.wxa_pages is not None else None)
        pages = None if pages is None else {str(p) for p in pages}
    except (TypeError, ValueError):
        return answer({"error": "token_ttl_s and token_grace_s are seconds, wxa_pages a list or null"}, 400)
    return answer(emulator.configure(ttl, grace, pages))
