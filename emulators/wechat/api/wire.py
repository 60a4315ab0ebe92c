"""How the emulator speaks HTTP as WeChat does: JSON answers, error answers, request
bodies, and the hooks every request passes (faults injected, calls logged)."""

from __future__ import annotations

import json
import secrets
import time
from typing import cast

from flask import Response, current_app, request

from emulators.wechat.api.state import ERRMSG, EmulatorState, WeChatError, now_iso


def state() -> EmulatorState:
    """The emulator state of the app handling the request."""
    return cast(EmulatorState, current_app.extensions["wechat_emulator"])


def answer(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8")


def error(errcode: int, errmsg: str | None = None) -> Response:
    # WeChat answers errors with HTTP 200 and a JSON body; errmsg ends with a request id.
    msg = errmsg or ERRMSG.get(errcode, "error")
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return answer({"errcode": errcode, "errmsg": f"{msg} rid: {rid}"})


def body() -> dict:
    """The request's JSON object, or WeChat's error for an empty or malformed body."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise WeChatError(44002)
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeChatError(47001) from None
    if not isinstance(obj, dict):
        raise WeChatError(47001)
    return obj


def on_wechat_error(exc: WeChatError) -> Response:
    return error(exc.errcode, exc.errmsg)


def _is_control(path: str) -> bool:
    return path.startswith("/_emulator/") or path == "/healthz"


def inject_fault() -> Response | None:
    """Before an API request: the next pending fault for its path (a delay, an HTTP
    status or an errcode)."""
    if _is_control(request.path):
        return None
    fault = state().take_fault(request.path)
    if fault is None:
        return None
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status:
        return Response(f"<html><body>{fault.status}</body></html>", status=fault.status, content_type="text/html")
    if fault.errcode:
        return error(fault.errcode, fault.errmsg)
    return None


def log_call(response: Response) -> Response:
    """After an API request: remember it for `/_emulator/calls`."""
    if not _is_control(request.path):
        errcode = None
        if response.content_type.startswith("application/json"):
            try:
                errcode = json.loads(response.get_data()).get("errcode")
            except ValueError:
                pass
        state().record_call(
            {
                "method": request.method,
                "path": request.path,
                "errcode": errcode,
                "status": response.status_code,
                "at": now_iso(),
            }
        )
    return response
