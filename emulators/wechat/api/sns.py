"""Who a WeChat user is: `/sns/jscode2session` (a mini-program's wx.login code) and web
authorization (`/connect/oauth2/authorize`, then `/sns/oauth2/access_token`)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from emulators.wechat.api.state import App, WeChatError
from emulators.wechat.api.wire import answer, state

CODE_RE = re.compile(r"[0-9A-Za-z_\-]{1,128}")

sns = Blueprint("sns", __name__)


def _code_exchange(code_param: str) -> tuple[App, str]:
    """The account and code of a code-for-identity request (jscode2session, web OAuth),
    after WeChat's checks of appid, secret, grant_type and a code being there."""
    args = request.args
    account = state().account(args.get("appid", ""))
    if account is None:
        raise WeChatError(40013)
    if not secrets.compare_digest(account.secret, args.get("secret", "")):
        raise WeChatError(40125)
    if args.get("grant_type") != "authorization_code":
        raise WeChatError(40002)
    code = args.get(code_param, "")
    if not code:
        raise WeChatError(41008)
    return account, code


@sns.get("/sns/jscode2session")
def jscode2session():
    account, code = _code_exchange("js_code")
    if not CODE_RE.fullmatch(code) or code.lower().startswith(("bad", "invalid")):
        raise WeChatError(40029)
    known = state().redeem_jscode(code)
    if known is None:
        digest = hashlib.sha1(f"{account.appid}:{code}".encode()).digest()  # noqa: S324  emulator: derives a fake openid from a login code, as WeChat's opaque ids
        known = {"openid": "o" + base64.urlsafe_b64encode(digest).decode()[:27]}
    session = {"session_key": base64.b64encode(secrets.token_bytes(16)).decode(), "openid": known["openid"]}
    if known.get("unionid"):
        session["unionid"] = known["unionid"]
    return answer(session)


@sns.get("/connect/oauth2/authorize")
def oauth_authorize():
    args = request.args
    account, openid = state().oauth_account_and_user(args.get("appid", ""))
    if account is None or account.kind != "oa":
        raise WeChatError(40013)
    redirect_uri = args.get("redirect_uri", "")
    if (
        not redirect_uri.startswith(("http://", "https://"))
        or args.get("response_type") != "code"
        or args.get("scope") not in ("snsapi_base", "snsapi_userinfo")
    ):
        raise WeChatError(47001)
    if openid is None:
        return Response(
            "<html><body>请在微信客户端打开链接</body></html>", status=200, content_type="text/html; charset=utf-8"
        )
    code = state().grant_oauth_code(openid, account.appid, args["scope"])
    sep = "&" if "?" in redirect_uri else "?"
    target = f"{redirect_uri}{sep}{urlencode({'code': code, 'state': args.get('state', '')})}"
    return Response(status=302, headers={"Location": target})


@sns.get("/sns/oauth2/access_token")
def oauth_access_token():
    account, code = _code_exchange("code")
    grant = state().redeem_oauth_code(code)
    if grant is None or grant["appid"] != account.appid or grant["expires_at"] < time.time():
        raise WeChatError(40029)
    token = {
        "access_token": secrets.token_urlsafe(32),
        "expires_in": 7200,
        "refresh_token": secrets.token_urlsafe(32),
        "openid": grant["openid"],
        "scope": grant["scope"],
    }
    if grant.get("unionid"):  # as WeChat: when the account is under an Open Platform account
        token["unionid"] = grant["unionid"]
    return answer(token)
