"""The `/_emulator/...` control endpoints for tests and people, and `/healthz`."""

from __future__ import annotations

import secrets
import time

import requests
from flask import Blueprint, request

from emulators.wechat.api.sns import CODE_RE
from emulators.wechat.api.state import Fault
from emulators.wechat.api.wire import answer, state
from emulators.wechat.push import MiniProgramPush

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
    code = spec.get("code") or "c" + secrets.token_hex(16)  # never "bad...", which jscode2session refuses
    if not CODE_RE.fullmatch(code):
        return answer({"error": "code must be 1-128 letters, digits, '_' or '-'"}, 400)
    state().add_jscode(code, spec["openid"], spec.get("unionid"))
    return answer({"code": code, "openid": spec["openid"]})


@control.post("/_emulator/oauth_user")
def oauth_user():
    spec = request.get_json(force=True, silent=True)
    if (
        not isinstance(spec, dict)
        or not (spec.get("openid") is None or isinstance(spec["openid"], str))
        or not (spec.get("unionid") is None or isinstance(spec["unionid"], str))
    ):
        return answer({"error": 'body must be {"openid": str | null, "unionid": optional str}'}, 400)
    openid = state().set_oauth_user(spec.get("openid") or None, spec.get("unionid") or None)
    return answer({"openid": openid, "unionid": spec.get("unionid") or None})


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


@control.get("/_emulator/template_messages")
def template_messages():
    """Official Account template messages sent to `touser` (everyone without it), oldest first."""
    return answer(state().template_messages_for(request.args.get("touser") or None))


@control.get("/_emulator/subscribe_messages")
def subscribe_messages():
    """Mini-program subscription messages sent to `touser` (a mini-program openid), oldest first."""
    return answer(state().subscribe_messages_for(request.args.get("touser") or None))


@control.post("/_emulator/window")
def window():
    """`{"touser", "silent_hours": 49}`: the user last wrote that long ago (over 48: customer-service
    messages answer 45015); `{"touser", "silent_hours": null}`: forget (the window is open)."""
    spec = request.get_json(force=True, silent=True)
    if not isinstance(spec, dict) or not isinstance(spec.get("touser"), str) or not spec["touser"]:
        return answer({"error": 'body must be {"touser": ..., "silent_hours": number | null}'}, 400)
    hours = spec.get("silent_hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0):
        return answer({"error": "silent_hours must be a number of hours >= 0, or null"}, 400)
    state().set_last_inbound(spec["touser"], None if hours is None else time.time() - hours * 3600)
    return answer({"ok": True, "touser": spec["touser"], "silent_hours": hours})


@control.route("/_emulator/wxa_push", methods=["GET", "POST"])
def wxa_push():
    """Where the mini-program's message push goes: `{"url", "token", "aes_key", "format": "xml" | "json"}`."""
    if request.method == "POST":
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict) or not spec.get("url") or not spec.get("token"):
            return answer(
                {"error": 'body must be {"url", "token", "aes_key": optional, "format": "xml" | "json"}'}, 400
            )
        if spec.get("format", "xml") not in ("xml", "json"):
            return answer({"error": "format must be xml or json"}, 400)
        state().wxa_push = {
            "url": spec["url"],
            "token": spec["token"],
            "aes_key": spec.get("aes_key") or "",
            "format": spec.get("format", "xml"),
        }
    push = state().wxa_push
    return answer({k: ("***" if k in ("token", "aes_key") and v else v) for k, v in (push or {}).items()})


@control.route("/_emulator/subscriptions", methods=["GET", "POST"])
def subscriptions():
    """POST `{"openid", "template_ids": [...], "status": "accept" | "reject"}`: the person answers
    wx.requestSubscribeMessage in the mini-program; WeChat remembers it and pushes a
    subscribe_msg_popup_event to the push URL (`pushed`: the URL's HTTP status, or the error).
    GET `?openid=`: the sends left per template."""
    if request.method == "GET":
        return answer(state().subscriptions_of(request.args.get("openid", "")))
    spec = request.get_json(force=True, silent=True)
    ok = (
        isinstance(spec, dict)
        and isinstance(spec.get("openid"), str)
        and spec["openid"]
        and isinstance(spec.get("template_ids"), list)
        and spec["template_ids"]
        and all(isinstance(t, str) and t for t in spec["template_ids"])
        and spec.get("status", "accept") in ("accept", "reject")
    )
    if not ok:
        return answer({"error": 'body must be {"openid", "template_ids": [...], "status": "accept" | "reject"}'}, 400)
    status = spec.get("status", "accept")
    left = state().subscribe(spec["openid"], spec["template_ids"], status)
    push = state().wxa_push
    pushed: int | str | None = None
    if push:
        items = [{"TemplateId": t, "SubscribeStatusString": status, "PopupScene": "0"} for t in spec["template_ids"]]
        app = next((a for a in state().apps.values() if a.kind == "wxa"), None)
        try:
            pushed = (
                MiniProgramPush(push["url"], push["token"], app.appid if app else "", push["aes_key"], push["format"])
                .send(spec["openid"], "subscribe_msg_popup_event", items)
                .status_code
            )
        except requests.RequestException as exc:
            pushed = f"{type(exc).__name__}"
    return answer({"openid": spec["openid"], "left": left, "pushed": pushed})


@control.get("/_emulator/media")
def media():
    return answer(state().media_uploaded())


@control.get("/_emulator/menu")
def menu():
    return answer({"menu": state().current_menu()})
